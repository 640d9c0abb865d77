# frozen_string_literal: true

require_relative "request_matcher"

module Gitlab
  module Cells
    module Learn
      module RSpec
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
      end
    end
  end
end
