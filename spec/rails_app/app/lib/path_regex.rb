# frozen_string_literal: true

# GitLab's Gitlab::PathRegex, abridged (fewer reserved words, same constructs): the route
# requirements use Onigmo look-ahead that reaches past the parameter (`(?!(admin|...)/)`),
# look-behind (`(?<!\.git|\.atom)`) and `{0,254}`, which the gem must widen and confirm.
module PathRegex
  # First path segments the application owns.
  TOP_LEVEL_ROUTES = %w[- .well-known admin api assets dashboard explore groups help import oauth profile
                        projects public robots.txt s search snippets uploads users v2].freeze
  # Segments after a namespace that are project routes, not subgroups.
  PROJECT_WILDCARD_ROUTES = %w[- badges blame blob commits create edit files new raw refs tree update wikis].freeze

  PATH_START_CHAR = '[a-zA-Z0-9_\.]'
  PATH_REGEX_STR = "#{PATH_START_CHAR}[a-zA-Z0-9_\\-\\.]{0,254}".freeze
  NAMESPACE_FORMAT_REGEX_JS = "#{PATH_REGEX_STR}[a-zA-Z0-9_\\-]|[a-zA-Z0-9_]".freeze
  NO_SUFFIX_REGEX = /(?<!\.git|\.atom)/
  NAMESPACE_FORMAT_REGEX = /(?:#{NAMESPACE_FORMAT_REGEX_JS})#{NO_SUFFIX_REGEX}/
  PROJECT_PATH_FORMAT_REGEX = /(?:#{PATH_REGEX_STR})#{NO_SUFFIX_REGEX}/

  module_function

  def root_namespace_route_regex
    illegal_words = Regexp.new(Regexp.union(TOP_LEVEL_ROUTES).source, Regexp::IGNORECASE)
    single_line(%r{
      (?!(#{illegal_words})/)
      #{NAMESPACE_FORMAT_REGEX}
    }x)
  end

  def full_namespace_route_regex
    illegal_words = Regexp.new(Regexp.union(PROJECT_WILDCARD_ROUTES).source, Regexp::IGNORECASE)
    single_line(%r{
      #{root_namespace_route_regex}
      (?:
        /
        (?!#{illegal_words}/)
        #{NAMESPACE_FORMAT_REGEX}
      )*
    }x)
  end

  def project_route_regex
    illegal_words = Regexp.new(Regexp.union(PROJECT_WILDCARD_ROUTES).source, Regexp::IGNORECASE)
    single_line(%r{
      (?!(#{illegal_words})/)
      #{PROJECT_PATH_FORMAT_REGEX}
    }x)
  end

  def full_namespace_path_regex
    %r{\A#{full_namespace_route_regex}/\z}
  end

  def full_project_path_regex
    %r{\A#{full_namespace_route_regex}/#{project_route_regex}/\z}
  end

  # GitLab's `single_line_regexp`: the extended source without its layout.
  def single_line(regex)
    Regexp.new(regex.source.gsub(/\(\?#.+?\)/, "").gsub(/\s*/, ""), regex.options ^ Regexp::EXTENDED).freeze
  end
end
