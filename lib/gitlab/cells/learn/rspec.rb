# frozen_string_literal: true

require "gitlab/cells/learn"
require_relative "rspec/matchers/learn_matcher"
require_relative "rspec/matchers/recognize_matcher"

module Gitlab
  module Cells
    module Learn
      # RSpec support: `require "gitlab/cells/learn/rspec"` in spec_helper.rb. The matchers are
      # included into every example group when RSpec is loaded. Each matcher lives in its own
      # file under rspec/matchers/, as rspec-rails keeps them.
      #
      # @example
      #   classifier = Gitlab::Cells::Learn::Classifier.from_rails(Rails.application.routes)
      #   expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues")
      #     .as_routable("/gitlab-org/gitlab").with_entity(:route_path, "gitlab-org/gitlab")
      #   expect(classifier).to learn(:get, "/-/profile").as_fixed("cell_0").exactly
      #   expect(classifier).to learn(:get, "/").as_fixed.exactly.as_uncacheable
      #   expect(classifier).to learn(:get, "/nowhere").as_default(:no_route)
      #   expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues")
      #     .with_route("projects/issues#index").with_params("project_id" => "gitlab")
      #   expect(classifier).to learn(:get, "/acme").with_constraints { |route, params| params["id"] != "acme" }
      #     .as_routable("/acme")
      #   expect(classifier).to recognize(:get, "/help").as("help#index")
      #   expect(classifier).not_to recognize(:post, "/help")
      module RSpec
        # Explanations of {Result#reason} for :default results.
        REASONS = {
          no_route: "no route matches this method and path, so the request goes to the default cell",
          no_rule: "a route matches, but no fixed rule covers the path and no routable rule applies to the route"
        }.freeze

        # The matchers. Included into RSpec's example groups automatically; include it yourself
        # elsewhere.
        module Matchers
          # @param method [String, Symbol] the HTTP method
          # @param path_info [String]
          # @yieldparam route [RouteInfo] dynamic constraints, as {Classifier#learn} takes them
          # @return [LearnMatcher]
          def learn(method, path_info, &)
            LearnMatcher.new(method, path_info, &)
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
