# frozen_string_literal: true

require "json"

module Gitlab
  module Cells
    module Learn
      # Replays GitLab's structured request logs against a classifier: for each request that
      # was served, does the classifier name the route that actually served it?
      #
      # Two log shapes are read, one JSON object a line, told apart by their fields:
      # - `production_json.log` (Lograge): `method`, `path`, `controller`
      #   (`"Projects::IssuesController"`), `action` (`"index"`). The classifier's route is compared
      #   as `controller#action` in route-defaults spelling (`projects/issues#index`).
      # - `api_json.log` (Grape): `method`, `path`, `route` (Grape's `route.pattern.origin`,
      #   `/api/:version/projects/:id/issues`). The classifier's route is compared by its spec
      #   without the format suffix (`(.json)`, `(.:format)`).
      #
      # Lines without those fields (a redirect or a mounted app: nothing served by a controller or
      # a Grape endpoint; a 404 with no route) are counted as skipped, not compared. A query
      # string in `path` is dropped, as Rails drops it before routing.
      #
      # What the classifier cannot know from a log line, and how it is decided: routes with
      # dynamic constraints (GitLab's URL constrainers, lambdas) and mounts are asked through the
      # constraint block given to {#initialize}; the default accepts them all, and `ideal: true`
      # accepts one exactly when it is the route that served (the ideal host of `cells-learn
      # verify --host ideal`), which isolates the structural matching and Rails' order.
      class LogReplay
        # One compared request.
        Entry = Struct.new(:line, :request_method, :path, :served, :named) do
          def agree?
            served == named
          end

          def to_s
            "line #{line}: #{request_method} #{path}: served by #{served}, the classifier names #{named || "no route"}"
          end
        end

        # The outcome of a replay.
        Report = Struct.new(:compared, :skipped, :source) do
          # @return [Array<Entry>] every compared request
          def entries
            compared
          end

          # @return [Array<Entry>] requests where the classifier named another route
          def differences
            entries.reject(&:agree?)
          end

          # @return [Integer]
          def agreed
            entries.count(&:agree?)
          end

          # @return [Float] agreeing / compared, 1.0 for an empty log
          def ratio
            entries.empty? ? 1.0 : agreed.fdiv(entries.size)
          end

          # @return [String] the summary line and one line per difference
          def to_text(limit: nil)
            lines = ["#{source}: #{agreed}/#{entries.size} requests name the route that served " \
                     "(#{format("%.2f", ratio * 100)}%), #{skipped} lines skipped"]
            diffs = differences
            diffs.first(limit || diffs.size).each { |d| lines << "differs: #{d}" }
            lines << "... #{diffs.size - limit} more differences" if limit && diffs.size > limit
            lines.join("\n")
          end
        end

        # @param classifier [Classifier, RailsClassifier]
        # @param ideal [Boolean] decide dynamic constraints and mounts as the ideal host
        # @yieldparam route [RouteInfo] a route with dynamic constraints
        # @yieldparam params [Hash{String=>String}]
        # @yieldreturn [Boolean] whether it holds (when not ideal); all hold without a block
        def initialize(classifier, ideal: false, &constraint)
          raise ArgumentError, "give ideal: true or a constraint block, not both" if ideal && constraint

          @classifier = classifier
          @ideal = ideal
          @constraint = constraint
        end

        # @param io [IO, #each_line] the log
        # @param source [String] named in the report
        # @return [Report]
        # @raise [InvalidRequestError] naming the line, for a line that is not a JSON object
        def replay(io, source: "log")
          entries = []
          skipped = 0
          io.each_line.with_index(1) do |text, number|
            next if text.strip.empty?

            entry = compare(parse(text, number, source), number)
            entry ? entries << entry : skipped += 1
          end
          Report.new(entries, skipped, source)
        end

        # @param path [String] a log file
        # @return [Report]
        def replay_file(path)
          File.open(path, "r:UTF-8") { |io| replay(io, source: path) }
        end

        # `Projects::IssuesController` -> `projects/issues`: what route defaults name.
        #
        # @return [String]
        def self.controller_path(class_name)
          class_name.delete_suffix("Controller").split("::").map do |part|
            part.gsub(/([A-Z\d]+)([A-Z][a-z])/, '\1_\2').gsub(/([a-z\d])([A-Z])/, '\1_\2').downcase
          end.join("/")
        end

        # A Grape spec as its `route` log field spells it: without the format suffix.
        #
        # @return [String]
        def self.grape_origin(spec)
          spec.sub(/\(\.(?::format|[\w|]+)\)\z/, "")
        end

        private

        def parse(text, number, source)
          record = JSON.parse(text)
          raise InvalidRequestError, "#{source}:#{number}: expected a JSON object, got #{record.class}" unless record.is_a?(Hash)

          record
        rescue JSON::ParserError => e
          raise InvalidRequestError, "#{source}:#{number}: not a JSON log line (#{e.message.lines.first.strip})"
        end

        def compare(record, number)
          method = record["method"]
          path = record["path"]
          return nil unless method.is_a?(String) && path.is_a?(String) && path.start_with?("/")

          served = served_by(record)
          return nil unless served

          path = path.split("?", 2).first
          named = name(recognize(method, path, served))
          Entry.new(number, method, path, served, named)
        end

        def served_by(record)
          if record["controller"].is_a?(String) && record["action"].is_a?(String)
            "#{self.class.controller_path(record["controller"])}##{record["action"]}"
          elsif record["route"].is_a?(String)
            record["route"]
          end
        end

        def name(route)
          return nil unless route
          return route.endpoint if route.endpoint

          self.class.grape_origin(route.spec)
        end

        def recognize(method, path, served)
          match = if @ideal
                    @classifier.recognize(method, path) { |route, _params| name(route) == served }
                  elsif @constraint
                    @classifier.recognize(method, path, &@constraint)
                  else
                    @classifier.recognize(method, path)
                  end
          match&.route
        rescue InvalidRequestError
          nil
        end
      end
    end
  end
end
