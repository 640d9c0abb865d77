# frozen_string_literal: true

require "json"
require "set"

module Gitlab
  module Cells
    module Learn
      # GitLab's route snapshot for its HTTP router (`config/routing/gitlab_routes.json`), written
      # from a route table: one entry per distinct template, sorted, each
      # `{"template", "example", "acceptsFormat"?, "dottedExample"?}` — the format of
      # `../shared/corpus/gitlab-route-templates.json`, which `cells-learn` reads back
      # (`src/templates.rs`).
      #
      # The rules, as GitLab's snapshot applies them:
      # - `template`: the route's path spec without a trailing `(.:format)`; an inline `.:format`
      #   (`/-/archive/*id.:format`) stays. `acceptsFormat` is true when any spec reduced to that
      #   template had a `.:format`.
      # - `example`: optional groups opened (innermost first; `\(` `\)` are literal), any
      #   `.:format` dropped, `/api/:version` pinned to `/api/v4`, each `*glob` filled with
      #   `foo/bar` and each `:param` with `foo`, repeated slashes squeezed, a trailing slash
      #   dropped (`/` stays).
      # - `dottedExample`: the same with `john.doe` and `john.doe/bar` (dots are legal in
      #   usernames and namespace paths); left out when equal to `example`.
      #
      # Grape routes carry their Grape spec (`/api/:version/projects/:id(.json)`) as
      # {GrapeRoutes} extracted it; auto-OPTIONS entries collapse into their template.
      module RouteSnapshot
        FORMAT_SUFFIX = "(.:format)"
        FORMAT_SEGMENT = ".:format"

        module_function

        # @param route_set [ActionDispatch::Routing::RouteSet] e.g. `Rails.application.routes`
        # @param exclude [Regexp, nil] templates to leave out (GitLab drops its test-only routes)
        # @return [Array<Hash>] the entries, sorted by template
        def from_rails(route_set, exclude: nil)
          from_specs(RailsRoutes.extract(route_set).map { |r| r["path"] }, exclude: exclude)
        end

        # @param specs [Array<String>] Journey path specs, format segment included
        # @return [Array<Hash>]
        # @raise [ArgumentError] for a spec that is not a String starting with `/`
        def from_specs(specs, exclude: nil)
          bad = specs.find { |s| !s.is_a?(String) || !s.start_with?("/") }
          raise ArgumentError, "route specs must be Strings starting with /, got #{bad.inspect}" if bad

          templates = Hash.new(false)
          specs.each do |spec|
            template = spec.delete_suffix(FORMAT_SUFFIX)
            next if exclude&.match?(template)

            templates[template] ||= spec.include?(FORMAT_SEGMENT)
          end
          templates.keys.sort.map { |template| entry(template, templates[template]) }
        end

        # @return [Hash] one snapshot entry
        def entry(template, accepts_format)
          example = example(template)
          dotted = example(template, param: "john.doe", glob: "john.doe/bar")
          out = { "template" => template, "example" => example }
          out["acceptsFormat"] = true if accepts_format
          out["dottedExample"] = dotted unless dotted == example
          out
        end

        # A URL the template matches, with every optional group present.
        #
        # @param template [String]
        # @return [String]
        # @raise [ArgumentError] for unbalanced parentheses
        def example(template, param: "foo", glob: "foo/bar")
          path = +""
          depth = 0
          i = 0
          while i < template.size
            c = template[i]
            if c == "\\" && %w[( )].include?(template[i + 1])
              path << template[i + 1] # `\(`, `\)`: a literal parenthesis (NuGet's `FindPackagesById\(\)`)
              i += 2
              next
            end
            case c
            when "(" then depth += 1
            when ")"
              depth -= 1
              raise ArgumentError, "unbalanced ')' at byte #{i} of #{template.inspect}" if depth.negative?
            else path << c
            end
            i += 1
          end
          raise ArgumentError, "unbalanced '(' in #{template.inspect}" unless depth.zero?

          path = path.gsub(FORMAT_SEGMENT, "").gsub("/api/:version", "/api/v4")
          path = path.gsub(/\*[a-z_]+/, glob).gsub(/:[a-z_]+/, param)
          path = path.squeeze("/").sub(%r{/+\z}, "")
          path.empty? ? "/" : path
        end

        # The snapshot as GitLab writes it: pretty JSON and a final newline.
        #
        # @return [String]
        def to_json(entries)
          "#{JSON.pretty_generate(entries)}\n"
        end
      end
    end
  end
end
