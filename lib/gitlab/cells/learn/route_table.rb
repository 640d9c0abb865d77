# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # Which route table a cell answers with, for the router's mixed-version rules.
      #
      # During a deploy cells run different route tables and may answer the same path differently
      # (a route only the new code has; a path that moved from routable to fixed). Learn answers
      # carry `"routes_digest"` (the classifier's artifact digest: which table) and
      # `"routes_version"` (an Integer that grows with every deploy: which table is newer; a digest
      # alone has no order), and the cell's health answer carries both as headers, so the router
      # asks cells of the newest table first and never lets an older table's answer replace a
      # newer one's in its cache.
      #
      # The version is the deploy's to give: the build's Unix time or its pipeline number, the
      # same on every cell that runs the same code (e.g. `ENV["CELLS_ROUTES_VERSION"]`).
      class RouteTable
        # Response headers of the health answer.
        VERSION_HEADER = "X-Gitlab-Cell-Routes-Version"
        DIGEST_HEADER = "X-Gitlab-Cell-Routes-Digest"

        # Versions are unsigned 63-bit integers on the router's side.
        MAX_VERSION = (2**63) - 1

        # @param classifier [#digest, Object] the digest is read from it on each answer (a
        #   {RailsClassifier} recompiles when the routes change); classifiers without one give none
        # @param version [Integer, String, nil] nil: answers carry no version (they rank below any
        #   versioned table)
        # @raise [ArgumentError] for a version that is not an Integer from 0 to 2**63 - 1
        def initialize(classifier, version)
          @classifier = classifier
          @version = self.class.version!(version)
          freeze
        end

        # @return [Integer, nil]
        attr_reader :version

        # @return [String, nil] the classifier's current route digest
        def digest
          @classifier.respond_to?(:digest) ? @classifier.digest : nil
        end

        # The health answer's headers (Rack 3 lower-case names when needed).
        #
        # @return [Hash{String => String}]
        def headers
          out = {}
          out[Endpoint.header(VERSION_HEADER)] = version.to_s if version
          (d = digest) && (out[Endpoint.header(DIGEST_HEADER)] = d)
          out
        end

        # @api private
        def self.version!(version)
          return nil if version.nil?

          value = version.is_a?(String) && version.match?(/\A\d{1,19}\z/) ? Integer(version, 10) : version
          return value if value.is_a?(Integer) && value.between?(0, MAX_VERSION)

          raise ArgumentError, "routes_version must be an Integer from 0 to #{MAX_VERSION} (the deploy's build time or " \
                               "pipeline number), not #{version.inspect}"
        end
      end
    end
  end
end
