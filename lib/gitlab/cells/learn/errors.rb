# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # Every error this gem raises.
      class Error < StandardError; end

      # A route definition that cannot be compiled: which route, where in its spec or
      # requirement, and why.
      class InvalidRouteError < Error
        # @return [Integer, nil] the route's index in definition order
        attr_reader :route_index
        # @return [Integer, nil] byte position in the path spec or the requirement source
        attr_reader :position
        # @return [String, nil] what is wrong there
        attr_reader :reason
      end

      # A request that cannot be classified: a bad method, an over-long path...
      class InvalidRequestError < Error; end

      # A path over the classifier's length limit (the learn endpoint answers 414).
      class PathTooLongError < InvalidRequestError; end

      # Bytes given to {Classifier.load} that are not an artifact this version wrote.
      class CorruptArtifactError < Error; end

      # Learn rules that are not valid.
      class InvalidRulesError < Error; end
    end
  end
end
