# frozen_string_literal: true

require_relative "request_matcher"

module Gitlab
  module Cells
    module Learn
      module RSpec
        # `learn(method, path_info)`: what {Classifier#learn} answers for a request.
        class LearnMatcher < RequestMatcher
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
            "learn #{request_text} #{expected_text}"
          end

          private

          def expect_source(source)
            raise ArgumentError, "learn(...) already expects a #{@source} result; it cannot also be #{source}" if @source && @source != source

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
              raise ArgumentError, "learn(#{request_text}) expects nothing: chain as_routable, as_fixed, as_default, " \
                                   "exactly, as_uncacheable, with_entity, with_route or with_params"
            end

            @actual = actual
            @result = actual.learn(@method, @path_info, &@constraint)
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
      end
    end
  end
end
