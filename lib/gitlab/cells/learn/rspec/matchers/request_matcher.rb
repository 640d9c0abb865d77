# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      module RSpec
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
            return if actual.respond_to?(:learn) && actual.respond_to?(:recognize)

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
              label = if match
                        "other routes that match structurally (later in Rails order, or rejected by a constraint)"
                      else
                        "routes that match structurally but were rejected by a constraint"
                      end
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
      end
    end
  end
end
