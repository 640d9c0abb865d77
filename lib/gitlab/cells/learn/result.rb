# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # A routable entity, typed as one of the claims GitLab's Topology Service resolves.
      #
      # @!attribute [r] kind
      #   @return [Symbol] :route_path, :organization_path, :namespace_id, :project_id, :user_id or :username
      # @!attribute [r] key
      #   @return [String] e.g. "gitlab-org/gitlab" or "42"
      Entity = Struct.new(:kind, :key) do
        def to_s
          "#{kind}:#{key}"
        end
      end

      # The route a request matched: its index in definition order, Journey spec, and endpoint.
      RouteInfo = Struct.new(:index, :verb, :spec, :endpoint, :name, :dynamic) do
        def to_s
          "##{index} #{verb.empty? ? 'ANY' : verb} #{spec}#{endpoint ? " (#{endpoint})" : ''}"
        end
      end

      # What {Classifier#classify} learned about a request. Frozen.
      class Result
        # @return [Symbol] :routable, :fixed or :default
        attr_reader :source
        # @return [String] the path the router may cache (a prefix unless {#exact?})
        attr_reader :path
        # @return [Entity, nil] the routable entity, for :routable results
        attr_reader :entity
        # @return [RouteInfo, nil] the route Rails would pick, if any
        attr_reader :route
        # @return [String, nil] the cell a :fixed rule names (nil: the default cell)
        attr_reader :fixed_cell
        # @return [Symbol, nil] for :default results, :no_route or :no_rule
        attr_reader :reason

        def initialize(source:, path:, exact:, cacheable:, entity: nil, route: nil, fixed_cell: nil, reason: nil)
          assign(source, path, exact, cacheable, entity, route, fixed_cell, reason)
        end

        # The classifier's constructor: positional, as it sits on the hot path of every learn request.
        # @api private
        def self.build(source, path, exact, cacheable, entity, route, fixed_cell, reason)
          allocate.send(:assign, source, path, exact, cacheable, entity, route, fixed_cell, reason)
        end

        # Only this exact path may be cached, not the paths below it.
        def exact?
          @exact
        end

        # Whether the router may cache the answer at all (false for `/`, `/dashboard`, unknown routes).
        def cacheable?
          @cacheable
        end

        def routable?
          source == :routable
        end

        def fixed?
          source == :fixed
        end

        # The learn endpoint's JSON answer for this result, with the cell chosen.
        #
        # @param cell [String] the cell that serves the request
        # @return [Hash] e.g. `{"path" => "/gitlab-org", "cell" => "cell_eu0", "source" => "routable"}`
        def to_h(cell: fixed_cell)
          h = { "path" => path, "cell" => cell, "source" => source.to_s }
          h["exact"] = true if exact?
          h["cacheable"] = false unless cacheable?
          h
        end

        def ==(other)
          other.is_a?(Result) && to_a == other.to_a
        end
        alias eql? ==

        def hash
          to_a.hash
        end

        def inspect
          "#<#{self.class.name} #{source} #{path.inspect}#{exact? ? ' exact' : ''}#{cacheable? ? '' : ' uncacheable'}" \
            "#{entity ? " entity=#{entity}" : ''}#{route ? " route=#{route}" : ''}>"
        end
        alias to_s inspect

        protected

        def to_a
          [source, path, @exact, @cacheable, entity, route, fixed_cell, reason]
        end

        private

        def assign(source, path, exact, cacheable, entity, route, fixed_cell, reason)
          @source = source
          @path = path.frozen? ? path : -path
          @exact = exact
          @cacheable = cacheable
          @entity = entity&.freeze
          @route = route
          @fixed_cell = fixed_cell
          @reason = reason
          freeze
        end
      end
    end
  end
end
