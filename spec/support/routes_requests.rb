# frozen_string_literal: true

require "set"

# Generates request paths for a route table: paths filled from each route's own spec (several
# parameter value sets, optional groups in and out) and near-misses of them (reserved words,
# `.git`/`.atom` suffixes, doubled and trailing slashes, upper case, `%2F`, over-long and
# unicode segments, empty segments), each under the route's verbs, a wrong verb and HEAD.
# Used by the Rails and Grape differential specs; the answers come from the real routers.
module RoutesRequests
  # Values for `:param` and `*glob` per set (plain words, dotted words, numbers, multi-segment
  # globs, mixed case). `format` and `version` get their own values.
  VALUE_SETS = [
    { sym: "foo", glob: "foo/bar", format: "json" },
    { sym: "john.doe", glob: "john.doe/x.y", format: "atom" },
    { sym: "42", glob: "a", format: "html" },
    { sym: "gitlab-org", glob: "gitlab-org/sub-group/deep", format: "git" },
    { sym: "Foo_Bar-1", glob: "a/b/c/d/e.rb", format: "xml" }
  ].freeze
  RESERVED = %w[admin api - help users assets dashboard groups .well-known 404.html projects o].freeze
  VERBS = %w[GET POST PUT PATCH DELETE].freeze
  MAX_GROUP_VARIANTS = 8

  # A request to compare: method and raw path (query string and all).
  Request = Struct.new(:method, :path)

  module_function

  # @param table [Array<Hash>] routes in the corpus format (`verb`, `path`)
  # @param version [String] the value for a `:version` parameter
  # @return [Array<Request>] de-duplicated, in a stable order
  def for_table(table, version: "v4")
    seen = Set.new
    out = []
    add = lambda do |method, path|
      out << Request.new(method, path) if seen.add?([method, path])
    end
    table.each do |route|
      verbs = route_verbs(route["verb"].to_s)
      wrong = (VERBS - verbs).first || "OPTIONS"
      methods = (verbs + [wrong, "HEAD"]).uniq
      filled = VALUE_SETS.flat_map { |set| expand(route["path"], set, version) }.uniq
      filled.each { |path| methods.each { |m| add.call(m, path) } }
      near_misses(route["path"], version).each { |path| methods.each { |m| add.call(m, path) } }
    end
    out
  end

  def route_verbs(verb)
    verb.empty? ? %w[GET POST DELETE] : verb.split("|")
  end

  # Every concrete path of a spec for one value set, optional groups in and out.
  # @return [Array<String>]
  def expand(spec, set, version, override = {})
    tree = parse(spec)
    variants(tree).first(MAX_GROUP_VARIANTS).map do |tokens|
      tokens.map { |t| fill(t, set, version, override) }.join
    end
  end

  # Near-misses of a route's first filled path.
  # @return [Array<String>]
  def near_misses(spec, version)
    base = expand(spec, VALUE_SETS[0], version).first
    tokens = variants(parse(spec)).first
    params = tokens.grep(/\A[:*]/).reject { |t| %w[:format :version].include?(t) }
    out = [
      "#{base}.git", "#{base}.atom", "#{base}/", "#{base}//", base.sub("/", "//"), base.upcase,
      base.sub(%r{/(\w)}) { "/#{Regexp.last_match(1).upcase}" }, "#{base}?x=1&y=/z", "#{base}/extra",
      base.sub(%r{/[^/]*\z}, ""), "#{base}.json", "/#{base}", base.tr("/", "\\")
    ]
    [params.first, params.last].compact.uniq.each do |param|
      fillers = RESERVED + [
        "a%2Fb", "a%2fb", "a" * 254, "a" * 255, "a" * 256, "\u00fcn\u00efc\u00f6d\u00e9", "%C3%BC",
        "", "a..b", "foo.git", "foo.atom", "a+b", "a%20b", "%2e%2e", "x.json", "A.GIT", "-foo", "foo-", ".foo"
      ]
      fillers.each do |value|
        out << tokens.map { |t| t == param ? value : fill(t, VALUE_SETS[0], version, {}) }.join
      end
    end
    out.uniq
  end

  # Parses a Journey spec into tokens: Strings (literal text, `:name`, `*name`) and Arrays
  # (optional groups).
  def parse(spec)
    stack = [[]]
    spec.scan(/[:*]\w+|\(|\)|[^:*()]+|[:*]/) do |tok|
      case tok
      when "(" then stack << []
      when ")" then (group = stack.pop) && (stack.last << group)
      else stack.last << tok
      end
    end
    stack.first
  end

  # Token sequences with each optional group in or out (outermost first: all in, then all out...).
  def variants(tree)
    tree.reduce([[]]) do |acc, item|
      options = item.is_a?(Array) ? variants(item) + [[]] : [[item]]
      acc.product(options).map { |a, b| a + b }.first(MAX_GROUP_VARIANTS * 4)
    end
  end

  def fill(token, set, version, override)
    case token
    when /\A:(\w+)\z/
      name = Regexp.last_match(1)
      override.fetch(name) do
        if name == "format"
          set[:format]
        else
          name == "version" ? version : set[:sym]
        end
      end
    when /\A\*(\w+)\z/
      override.fetch(Regexp.last_match(1)) { set[:glob] }
    else token
    end
  end
end
