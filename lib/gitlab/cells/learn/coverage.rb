# frozen_string_literal: true

require "cgi"

module Gitlab
  module Cells
    module Learn
      # Which routes of a classifier the learn rules cover. Cells require every endpoint to be
      # routable by URI (a routable rule names its entity) or fixed to a cell (a fixed rule covers
      # its path); the rest would all go to the default cell, uncached.
      #
      # A route's class mirrors what {Classifier#learn} does for its requests:
      # - +:fixed+ when a fixed rule covers the route's leading literal path (an exact rule: the
      #   route's path without optional groups is literal and equal to the rule's; a prefix rule: on
      #   a +/+ boundary). Fixed rules win over routable ones at request time, so they do here too.
      # - +:routable+ when a routable rule applies: the route's spec starts with the rule's
      #   +spec_prefix+ (no prefix: any route) and every parameter the rule names is a parameter of
      #   the route.
      # - +:unclassified+ otherwise.
      #
      # Flags, independent of the class: +dynamic?+ (the route has constraint objects or lambdas
      # Rails consults at request time) and +fallback?+ (constructs of its requirements that the
      # DFA had to widen and that are checked exactly afterwards, see {Classifier#route_definitions}).
      #
      # @example
      #   coverage = Gitlab::Cells::Learn::Coverage.new(classifier)
      #   coverage.summary       # => {routable: 88, fixed: 113, unclassified: 0, dynamic: 0, fallback: 87, total: 201}
      #   coverage.unclassified  # => [#<struct Entry route=#12 GET /legacy/:id (legacy#show) ...>]
      #   File.write("coverage.html", coverage.to_html)
      class Coverage
        CLASSES = %i[routable fixed unclassified].freeze

        # The coverage of one route.
        #
        # @!attribute [r] route
        #   @return [RouteInfo]
        # @!attribute [r] klass
        #   @return [Symbol] :routable, :fixed or :unclassified
        # @!attribute [r] rule
        #   @return [Hash, nil] the rule that classifies the route (a "fixed" or "routable" rule)
        # @!attribute [r] widenings
        #   @return [Array<Hash>] what the DFA widened for this route ("construct", "action")
        # @!attribute [r] partial
        #   @return [Boolean] a :fixed route whose optional group extends the rule's last segment
        #     (`/help(-:topic)` under the rule `/help`): `/help-x` matches no rule; a trailing
        #     `(.:format)` is covered
        Entry = Struct.new(:route, :klass, :rule, :widenings, :mounted, :partial) do
          # @return [Boolean] whether Rails consults a constraint object or lambda for this route
          def dynamic?
            route.dynamic ? true : false
          end

          # @return [Boolean] whether some requirement needed a fallback (checked exactly after the DFA)
          def fallback?
            !widenings.empty?
          end

          # @return [Boolean] a mounted Rack application (its path is a prefix)
          def mounted?
            mounted ? true : false
          end

          # @return [Boolean] only the route's bare form is fixed (see #partial)
          def partial?
            partial ? true : false
          end

          # @return [String] the controller of the route's endpoint, or a placeholder
          def controller
            return route.endpoint.split("#", 2).first if route.endpoint

            mounted? ? "(mounted app)" : "(no controller)"
          end
        end

        # @return [Array<Entry>] one per route, in definition order
        attr_reader :entries
        # @return [Hash] the learn rules the routes were checked against
        attr_reader :rules

        # @param classifier [Classifier]
        # @raise [ArgumentError] when given something that is not a classifier
        def initialize(classifier)
          unless classifier.respond_to?(:route_definitions) && classifier.respond_to?(:rules) && classifier.respond_to?(:routes)
            raise ArgumentError, "Coverage needs a Gitlab::Cells::Learn::Classifier, not #{classifier.class}"
          end

          @rules = classifier.rules
          definitions = classifier.route_definitions
          @entries = classifier.routes.map do |route|
            definition = definitions.fetch(route.index)
            klass, rule = classify_route(definition)
            partial = klass == :fixed && partial_fixed?(definition["path"].to_s, rule)
            Entry.new(route, klass, rule, Array(definition["widenings"]).map(&:freeze).freeze, definition["mounted"], partial).freeze
          end.freeze
          freeze
        end

        # @return [Array<Entry>] routes neither routable nor fixed
        def unclassified
          entries.select { |e| e.klass == :unclassified }
        end

        # @return [Array<Entry>]
        def routable
          entries.select { |e| e.klass == :routable }
        end

        # @return [Array<Entry>]
        def fixed
          entries.select { |e| e.klass == :fixed }
        end

        # @return [Array<Entry>] :fixed routes whose optional forms (`/help.json`) no rule covers
        def partial
          entries.select(&:partial?)
        end

        # @return [Array<Entry>] routes with dynamic constraints
        def dynamic
          entries.select(&:dynamic?)
        end

        # @return [Array<Entry>] routes whose requirements needed a fallback
        def fallback
          entries.select(&:fallback?)
        end

        # Entries grouped by controller, controllers sorted by name.
        #
        # @param list [Array<Entry>] which entries (all by default; e.g. {#unclassified})
        # @return [Hash{String=>Array<Entry>}]
        def by_controller(list = entries)
          list.group_by(&:controller).sort_by(&:first).to_h
        end

        # @return [Hash{Symbol=>Integer}] counts by class, plus :dynamic, :fallback and :total
        def summary
          counts = CLASSES.to_h { |k| [k, 0] }
          entries.each { |e| counts[e.klass] += 1 }
          counts.merge(dynamic: dynamic.size, fallback: fallback.size, total: entries.size)
        end

        # @return [Hash{String=>Integer}] fallback routes per widened construct
        def widened_constructs
          counts = Hash.new(0)
          fallback.each { |e| e.widenings.map { |w| w["construct"] }.uniq.each { |c| counts[c] += 1 } }
          counts.sort_by { |c, n| [-n, c] }.to_h
        end

        # A plain-text report: the summary, then unclassified routes by controller, dynamic routes,
        # and the constructs that needed a fallback.
        # @return [String]
        def to_text
          s = summary
          total = s[:total]
          out = +"Routes: #{total}\n"
          CLASSES.each { |k| out << format("  %-13s %5d  %s\n", k, s[k], percent(s[k], total)) }
          out << format("  %-13s %5d  %s\n", "dynamic", s[:dynamic], percent(s[:dynamic], total))
          out << format("  %-13s %5d  %s\n", "fallback", s[:fallback], percent(s[:fallback], total))
          out << "\nUnclassified routes by controller:\n"
          list_text(out, by_controller(unclassified))
          out << "\nFixed routes whose optional forms no rule covers (default cell, uncached):\n"
          list_text(out, by_controller(partial))
          out << "\nRoutes with dynamic constraints:\n"
          list_text(out, by_controller(dynamic))
          out << "\nRoutes checked exactly after the DFA widened their requirements:\n"
          if widened_constructs.empty?
            out << "  (none)\n"
          else
            widened_constructs.each { |c, n| out << format("  %5d  %s\n", n, c) }
          end
          out
        end

        # A self-contained HTML page: the summary, a bar chart (inline SVG) of routes by class, and
        # tables of unclassified routes by controller, dynamic routes and fallback routes.
        # @param title [String]
        # @return [String]
        def to_html(title: "GitLab Cells route coverage")
          s = summary
          <<~HTML
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>#{h(title)}</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; }
            th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
            th { background: #f3f3f3; }
            td.n { text-align: right; font-variant-numeric: tabular-nums; }
            code { font-size: 0.9em; }
            .none { color: #777; font-style: italic; }
            </style>
            </head>
            <body>
            <h1>#{h(title)}</h1>
            <p>Every endpoint must be routable by URI (a routable rule names its entity) or fixed to a cell (a fixed rule covers its path).
            Unclassified routes go to the default cell (<code>#{h(rules["default_cell"])}</code>) and are never cached.</p>
            <h2>Summary</h2>
            <table id="summary">
            <tr><th>class</th><th>routes</th><th>share</th></tr>
            #{summary_rows(s)}
            </table>
            <h2>Routes by class</h2>
            #{svg_chart(s)}
            <h2>Unclassified routes by controller (#{s[:unclassified]})</h2>
            #{grouped_tables(by_controller(unclassified))}
            <h2>Fixed routes whose optional forms no rule covers (#{partial.size})</h2>
            <p>Only the bare path is fixed: e.g. <code>/help-x</code> for <code>/help(-:topic)</code> goes to the default cell, uncached.</p>
            #{route_table(partial)}
            <h2>Routes with dynamic constraints (#{s[:dynamic]})</h2>
            #{route_table(dynamic)}
            <h2>Routes whose requirements needed a fallback (#{s[:fallback]})</h2>
            <p>The DFA widened these constructs; a match is then checked exactly.</p>
            #{route_table(fallback, widenings: true)}
            </body>
            </html>
          HTML
        end

        # @return [String] the inline SVG bar chart of routes by class (and the dynamic/fallback flags)
        def svg_chart(s = summary)
          bars = [
            ["routable", s[:routable], "#2e7d32"], ["fixed", s[:fixed], "#1565c0"],
            ["unclassified", s[:unclassified], "#c62828"], ["dynamic", s[:dynamic], "#ef6c00"],
            ["fallback", s[:fallback], "#6a1b9a"]
          ]
          width = 640
          label_w = 110
          bar_max = width - label_w - 70
          row_h = 30
          height = (bars.size * row_h) + 20
          max = [s[:total], 1].max
          rows = bars.each_with_index.map do |(name, n, color), i|
            y = 10 + (i * row_h)
            w = (bar_max * n.to_f / max).round
            %(<g class="bar" data-class="#{name}" data-count="#{n}">) +
              %(<text x="#{label_w - 8}" y="#{y + 18}" text-anchor="end" font-size="13">#{name}</text>) +
              %(<rect x="#{label_w}" y="#{y + 4}" width="#{w}" height="#{row_h - 10}" fill="#{color}"><title>#{name}: #{n} of #{s[:total]}</title></rect>) +
              %(<text x="#{label_w + w + 6}" y="#{y + 18}" font-size="13">#{n}</text></g>)
          end
          head = %(<svg xmlns="http://www.w3.org/2000/svg" width="#{width}" height="#{height}" ) +
                 %(viewBox="0 0 #{width} #{height}" role="img" aria-label="Routes by class, #{s[:total]} routes">)
          axis = %(<line x1="#{label_w}" y1="5" x2="#{label_w}" y2="#{height - 5}" stroke="#999"/>)
          "#{head}#{axis}#{rows.join}</svg>"
        end

        def inspect
          "#<#{self.class.name} #{summary.map { |k, v| "#{k}=#{v}" }.join(" ")}>"
        end

        private

        # [class, rule]
        def classify_route(definition)
          spec = definition["path"].to_s
          params = Array(definition["params"])
          if (rule = fixed_rule_for(spec, definition["mounted"]))
            return [:fixed, rule]
          end
          if (rule = routable_rule_for(spec, params))
            return [:routable, rule]
          end

          [:unclassified, nil]
        end

        # A fixed rule that covers every request the route takes (at least its bare form).
        def fixed_rule_for(spec, mounted)
          literal = spec[/\A[^:*(]*/]
          bare = strip_groups(spec)
          fully_literal = !mounted && !bare.match?(/[:*]/)
          covered = covered_path(spec, literal)
          Array(rules["fixed"]).find do |f|
            if f["exact"]
              fully_literal && normalize(bare) == f["path"]
            else
              covers_prefix?(f["path"], covered)
            end
          end
        end

        # The leading literal path up to a point where every request continues on a `/` boundary
        # (or ends): "/users/:id" -> "/users", "/help(.:format)" -> "/help", "/x:y" -> "/".
        def covered_path(spec, literal)
          rest = spec[literal.length..]
          path = if rest.empty? || rest.start_with?("(") || literal.end_with?("/")
                   literal
                 else
                   literal[0, literal.rindex("/").to_i + 1]
                 end
          normalize(path)
        end

        # Whether an optional group extends the fixed rule's path within its last segment, so the
        # group's forms (e.g. `.json`) are covered by no rule.
        # A trailing `(.:format)` is covered: the core answers `/help.json` under the rule `/help`
        # as a fixed, exact path.
        def partial_fixed?(spec, rule)
          spec = spec.delete_suffix("(.:format)")
          return spec.include?("(") if rule["exact"]
          return false if rule["path"] == "/"

          literal = spec[/\A[^:*(]*/]
          rest = spec[literal.length..]
          normalize(literal) == rule["path"] && rest.start_with?("(") && !rest.start_with?("(/")
        end

        def routable_rule_for(spec, params)
          Array(rules["routable"]).find do |r|
            prefix = r["spec_prefix"]
            (prefix.nil? || spec.start_with?(prefix)) && Array(r["params"]).all? { |p| params.include?(p) }
          end
        end

        def strip_groups(spec)
          s = spec.dup
          nil while s.gsub!(/\([^()]*\)/, "")
          s
        end

        # Repeated slashes squeezed, a trailing slash dropped, as the core normalizes request paths.
        def normalize(path)
          p = path.squeeze("/")
          p = "/#{p}" unless p.start_with?("/")
          p.length > 1 ? p.chomp("/") : p
        end

        # The core's covers_prefix: `prefix` covers `path` on a `/` boundary.
        def covers_prefix?(prefix, path)
          return path.start_with?("/") if prefix == "/"
          return false unless path.start_with?(prefix)

          rest = path[prefix.length..]
          rest.empty? || rest.start_with?("/")
        end

        def percent(n, total)
          total.zero? ? "-" : format("%.1f%%", 100.0 * n / total)
        end

        def list_text(out, grouped)
          if grouped.empty?
            out << "  (none)\n"
            return
          end
          grouped.each do |controller, list|
            out << "  #{controller} (#{list.size})\n"
            list.each { |e| out << "    #{e.route}\n" }
          end
        end

        def h(text)
          CGI.escapeHTML(text.to_s)
        end

        def summary_rows(s)
          rows = CLASSES.map { |k| [k.to_s, s[k]] }
          rows += [["dynamic constraints", s[:dynamic]], ["fallback (checked exactly)", s[:fallback]], ["total", s[:total]]]
          rows.map do |name, n|
            %(<tr><td>#{h(name)}</td><td class="n">#{n}</td><td class="n">#{h(percent(n, s[:total]))}</td></tr>)
          end.join("\n")
        end

        def grouped_tables(grouped)
          return %(<p class="none">None: every route is routable or fixed.</p>) if grouped.empty?

          grouped.map do |controller, list|
            %(<h3><code>#{h(controller)}</code> (#{list.size})</h3>\n) + route_table(list)
          end.join("\n")
        end

        def route_table(list, widenings: false)
          return %(<p class="none">None.</p>) if list.empty?

          head = "<tr><th>#</th><th>verb</th><th>path</th><th>endpoint</th><th>class</th>#{widenings ? "<th>widened in the DFA</th>" : ""}</tr>"
          rows = list.map do |e|
            r = e.route
            cells = [
              %(<td class="n">#{r.index}</td>), "<td>#{h(r.verb.empty? ? "ANY" : r.verb)}</td>", "<td><code>#{h(r.spec)}</code></td>",
              "<td>#{h(r.endpoint || e.controller)}</td>", "<td>#{h(e.klass)}</td>"
            ]
            if widenings
              items = e.widenings.map { |w| "<li>#{h(w["construct"])}: #{h(w["action"])}</li>" }.join
              cells << "<td><ul>#{items}</ul></td>"
            end
            "<tr>#{cells.join}</tr>"
          end
          "<table>\n#{head}\n#{rows.join("\n")}\n</table>"
        end
      end
    end
  end
end
