# frozen_string_literal: true

require "gitlab/cells/learn"

module Gitlab
  module Cells
    module Learn
      # RSpec support: `require "gitlab/cells/learn/rspec"` in spec_helper.rb. The matchers are
      # included into every example group when RSpec is loaded.
      #
      # @example
      #   classifier = Gitlab::Cells::Learn::Classifier.from_rails(Rails.application.routes)
      #   expect(classifier).to classify(:get, "/gitlab-org/gitlab/-/issues")
      #     .as_routable("/gitlab-org/gitlab").with_entity(:route_path, "gitlab-org/gitlab")
      #   expect(classifier).to classify(:get, "/-/profile").as_fixed("cell_0").exactly
      #   expect(classifier).to classify(:get, "/").as_fixed.exactly.as_uncacheable
      #   expect(classifier).to classify(:get, "/nowhere").as_default(:no_route)
      #   expect(classifier).to classify(:get, "/gitlab-org/gitlab/-/issues")
      #     .with_route("projects/issues#index").with_params("project_id" => "gitlab")
      #   expect(classifier).to classify(:get, "/acme").with_constraints { |route, params| params["id"] != "acme" }
      #     .as_routable("/acme")
      #   expect(classifier).to recognize(:get, "/help").as("help#index")
      #   expect(classifier).not_to recognize(:post, "/help")
      module RSpec
        # Explanations of {Result#reason} for :default results.
        REASONS = {
          no_route: "no route matches this method and path, so the request goes to the default cell",
          no_rule: "a route matches, but no fixed rule covers the path and no routable rule applies to the route"
        }.freeze

        # Shared by both matchers: the request, the constraint block and the report of what Rails does.
        # @api private
        class RequestMatcher
          def initialize(method, path_info, &constraint)
            @method = method
            @path_info = path_info
            @constraint = constraint
          end

          # Dynamic constraints (GroupUrlConstrainer...): the block gets the RouteInfo and the path
          # parameters and answers whether the constraint holds. Without one, all hold.
          # @yieldparam route [RouteInfo]
          # @yieldparam params [Hash{String=>String}]
          def with_constraints(&block)
            raise ArgumentError, "with_constraints needs a block: { |route, params| ... }" unless block

            @constraint = block
            self
          end

          def matches?(actual)
            run(actual)
            @failures.empty?
          end

          def does_not_match?(actual)
            run(actual)
            !@failures.empty?
          end

          def supports_block_expectations?
            false
          end

          def diffable?
            false
          end

          private

          def request_text
            verb = @method.is_a?(String) || @method.is_a?(Symbol) ? @method.to_s.upcase : @method.inspect
            "#{verb} #{@path_info.inspect}"
          end

          def check_classifier(actual)
            return if actual.respond_to?(:classify) && actual.respond_to?(:recognize)

            raise ArgumentError, "expected a Gitlab::Cells::Learn::Classifier, got #{actual.inspect[0, 200]}"
          end

          # The route Rails would pick, its parameters, and the other structural matches.
          def rails_text
            match = @actual.recognize(@method, @path_info, &@constraint)
            lines = []
            if match
              lines << "Rails would match: #{match.route}"
              lines << "  params: #{match.params.inspect}"
            else
              lines << "Rails would match: no route"
            end
            others = @actual.respond_to?(:matches) ? @actual.matches(@method, @path_info) : []
            others = others.reject { |m| match && m.route.index == match.route.index }
            unless others.empty?
              label = match ? "other routes that match structurally (later in Rails order, or rejected by a constraint)" : "routes that match structurally but were rejected by a constraint"
              lines << "  #{label}:"
              others.first(5).each { |m| lines << "    #{m.route} params: #{m.params.inspect}" }
              lines << "    ... #{others.size - 5} more" if others.size > 5
            end
            lines.join("\n")
          end

          def route_matches?(route, expected)
            route && (route.endpoint == expected || route.spec == expected)
          end

          def string_params(params)
            raise ArgumentError, "with_params needs a Hash, not #{params.class}" unless params.is_a?(Hash)

            params.to_h { |k, v| [k.to_s, v.to_s] }
          end

          # A failure line when `got` lacks a pair of `expected`, else nil.
          def params_failure(expected, got)
            wrong = expected.reject { |k, v| got[k] == v }
            return if wrong.empty?

            "params: expected to include #{expected.inspect}, got #{got.inspect} " \
              "(differs: #{wrong.keys.map { |k| "#{k} => #{got.key?(k) ? got[k].inspect : "absent"}" }.join(", ")})"
          end
        end

        # `classify(method, path_info)`: what {Classifier#classify} answers for a request.
        class ClassifyMatcher < RequestMatcher
          UNSET = Object.new.freeze
          private_constant :UNSET

          def initialize(method, path_info, &)
            super
            @source = nil
            @expectations = []
          end

          # A :routable result; with a path, the cached prefix must be that path.
          # @param path [String, nil]
          def as_routable(path = nil)
            expect_source(:routable)
            want(:path, path) if path
            self
          end

          # A :fixed result; with a cell, the cell the rule names (nil: a rule naming no cell, i.e.
          # the default cell; the default cell's name also matches such a rule).
          # @param cell [String, nil]
          def as_fixed(cell = UNSET)
            expect_source(:fixed)
            want(:cell, cell) unless cell.equal?(UNSET)
            self
          end

          # A :default result (the default cell, never cached); optionally for a reason.
          # @param reason [Symbol, nil] :no_route or :no_rule
          def as_default(reason = nil)
            raise ArgumentError, "as_default reason must be one of #{REASONS.keys.inspect}, not #{reason.inspect}" if reason && !REASONS.key?(reason)

            expect_source(:default)
            want(:reason, reason) if reason
            self
          end

          # The router may cache only this exact path.
          def exactly
            want(:exact, true)
          end

          # The router may cache everything below the path.
          def as_prefix
            want(:exact, false)
          end

          # The router must never cache the answer.
          def as_uncacheable
            want(:cacheable, false)
          end

          # The router may cache the answer.
          def as_cacheable
            want(:cacheable, true)
          end

          # The routable entity: its kind, and optionally its key.
          # @param kind [Symbol] :route_path, :organization_path, :namespace_id, :project_id, :user_id, :username
          # @param key [String, nil]
          def with_entity(kind, key = nil)
            want(:entity, [kind.to_sym, key])
          end

          # The route Rails matched, by endpoint ("projects/issues#index") or Journey spec.
          def with_route(endpoint_or_spec)
            want(:route, endpoint_or_spec.to_s)
          end

          # Path parameters Rails extracts (a subset: other parameters may be present).
          def with_params(params)
            want(:params, string_params(params))
          end

          def failure_message
            "expected #{request_text} to be classified #{expected_text}\n" \
              "but it was classified:\n#{result_text}\n#{rails_text}\nwhy:\n#{@failures.map { |f| "  - #{f}" }.join("\n")}"
          end

          def failure_message_when_negated
            "expected #{request_text} not to be classified #{expected_text}\n" \
              "but it was classified:\n#{result_text}\n#{rails_text}"
          end

          def description
            "classify #{request_text} #{expected_text}"
          end

          private

          def expect_source(source)
            raise ArgumentError, "classify(...) already expects a #{@source} result; it cannot also be #{source}" if @source && @source != source

            @source = source
          end

          def want(key, value)
            @expectations.reject! { |k, _| k == key }
            @expectations << [key, value]
            self
          end

          def expectation(key)
            pair = @expectations.find { |k, _| k == key }
            pair && pair[1]
          end

          def run(actual)
            check_classifier(actual)
            if @source.nil? && @expectations.empty?
              raise ArgumentError, "classify(#{request_text}) expects nothing: chain as_routable, as_fixed, as_default, " \
                                   "exactly, as_uncacheable, with_entity, with_route or with_params"
            end

            @actual = actual
            @result = actual.classify(@method, @path_info, &@constraint)
            @match = nil
            @failures = []
            check_source if @source
            @expectations.each { |key, value| check_expectation(key, value) }
          end

          def check_source
            return if @source == @result.source

            why = "source: expected #{@source.inspect}, got #{@result.source.inspect}"
            why += " (#{@result.reason}: #{REASONS[@result.reason]})" if @result.reason
            @failures << why
          end

          def check(what, expected, got)
            @failures << "#{what}: expected #{expected.inspect}, got #{got.inspect}" unless expected == got
          end

          def check_expectation(key, value)
            r = @result
            case key
            when :path then check(:path, value, r.path)
            when :exact then check(:exact, value, r.exact?)
            when :cacheable then check(:cacheable, value, r.cacheable?)
            when :reason
              @failures << ("reason: expected #{value.inspect}, got #{r.reason.inspect}" + (r.reason ? " (#{REASONS[r.reason]})" : "")) unless r.reason == value
            when :cell then check_cell(value)
            when :entity then check_entity(*value)
            when :route
              unless route_matches?(r.route, value)
                @failures << "route: expected #{value.inspect}, got #{r.route ? r.route.to_s : "no route"}"
              end
            when :params then check_params(value)
            end
          end

          def check_cell(cell)
            return unless r_fixed?

            actual = @result.fixed_cell
            ok = actual == cell || (actual.nil? && cell == @actual.default_cell)
            return if ok

            shown = actual.nil? ? "nil (the rule names no cell: the default cell, #{@actual.default_cell.inspect})" : actual.inspect
            @failures << "cell: expected #{cell.inspect}, got #{shown}"
          end

          # A cell only exists for fixed results; the source mismatch already explains the rest.
          def r_fixed?
            return true if @result.source == :fixed

            @failures << "cell: a #{@result.source} result names no fixed cell" if @source != :fixed
            false
          end

          def check_entity(kind, key)
            e = @result.entity
            if e.nil?
              @failures << "entity: expected #{kind}:#{key ? key.inspect : "*"}, got none (only routable results have one)"
            elsif e.kind != kind || (key && e.key != key)
              @failures << "entity: expected #{kind}:#{key ? key.inspect : "*"}, got #{e.kind}:#{e.key.inspect}"
            end
          end

          def check_params(expected)
            @match = @actual.recognize(@method, @path_info, &@constraint)
            got = @match ? @match.params : nil
            if got.nil?
              @failures << "params: expected #{expected.inspect}, but no route matches"
              return
            end
            failure = params_failure(expected, got)
            @failures << failure if failure
          end

          def expected_text
            parts = []
            parts << "as #{@source}" if @source
            @expectations.each do |key, value|
              parts << case key
                       when :path then value.inspect
                       when :cell then "to cell #{value.inspect}"
                       when :reason then "(#{value})"
                       when :exact then value ? "exactly" : "as a prefix"
                       when :cacheable then value ? "cacheable" : "uncacheable"
                       when :entity then "with entity #{value[0]}:#{value[1] ? value[1].inspect : "*"}"
                       when :route then "with route #{value.inspect}"
                       when :params then "with params #{value.inspect}"
                       end
            end
            parts.join(" ")
          end

          def result_text
            r = @result
            lines = [
              "  source:    #{r.source}#{r.reason ? " (reason: #{r.reason}: #{REASONS[r.reason]})" : ""}",
              "  path:      #{r.path.inspect}",
              "  exact:     #{r.exact?}",
              "  cacheable: #{r.cacheable?}",
              "  entity:    #{r.entity ? "#{r.entity.kind}:#{r.entity.key.inspect}" : "none"}"
            ]
            if r.source == :fixed
              lines << "  cell:      #{r.fixed_cell ? r.fixed_cell.inspect : "nil (the default cell, #{@actual.default_cell.inspect})"}"
            end
            lines.join("\n")
          end
        end

        # `recognize(method, path)`: the route Rails would pick ({Classifier#recognize}).
        class RecognizeMatcher < RequestMatcher
          # The route, by endpoint ("help#index") or Journey spec ("/help(.:format)").
          def as(endpoint_or_spec)
            @expected = endpoint_or_spec.to_s
            self
          end

          # Path parameters Rails extracts (a subset).
          def with_params(params)
            @params = string_params(params)
            self
          end

          # Passes when no route matches, or (with #as) when another route does.
          def does_not_match?(actual)
            raise ArgumentError, "not_to recognize(...).with_params is ambiguous; use to recognize(...).with_params" if @params

            super
          end

          def failure_message
            "expected #{request_text} to be recognized#{expected_text}\n#{rails_text}\nwhy:\n" +
              @failures.map { |f| "  - #{f}" }.join("\n")
          end

          def failure_message_when_negated
            "expected #{request_text} not to be recognized#{expected_text}\n#{rails_text}"
          end

          def description
            "recognize #{request_text}#{expected_text}"
          end

          private

          def run(actual)
            check_classifier(actual)
            @actual = actual
            @match = actual.recognize(@method, @path_info, &@constraint)
            @failures = []
            unless @match
              @failures << "no route matches #{request_text}"
              return
            end
            @failures << "route: expected #{@expected.inspect}, got #{@match.route}" if @expected && !route_matches?(@match.route, @expected)
            failure = @params && params_failure(@params, @match.params)
            @failures << failure if failure
          end

          def expected_text
            s = +""
            s << " as #{@expected.inspect}" if @expected
            s << " with params #{@params.inspect}" if @params
            s
          end
        end

        # The matchers. Included into RSpec's example groups automatically; include it yourself
        # elsewhere.
        module Matchers
          # @param method [String, Symbol] the HTTP method
          # @param path_info [String]
          # @yieldparam route [RouteInfo] dynamic constraints, as {Classifier#classify} takes them
          # @return [ClassifyMatcher]
          def classify(method, path_info, &)
            ClassifyMatcher.new(method, path_info, &)
          end

          # @return [RecognizeMatcher]
          def recognize(method, path_info, &)
            RecognizeMatcher.new(method, path_info, &)
          end
        end
      end
    end
  end
end

RSpec.configure { |config| config.include Gitlab::Cells::Learn::RSpec::Matchers } if defined?(RSpec) && RSpec.respond_to?(:configure)
