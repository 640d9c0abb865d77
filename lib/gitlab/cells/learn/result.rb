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
        # The fields as the native classifier returns them, in this order; a Result wraps that
        # array as it is (one allocation on the hot path) and builds Entity and RouteInfo on demand.
        FIELDS = %i[source path exact cacheable fixed_cell entity_kind entity_key route_index reason].freeze
        private_constant :FIELDS

        def initialize(source:, path:, exact:, cacheable:, entity: nil, route: nil, fixed_cell: nil, reason: nil)
          path = path.dup.freeze unless path.frozen?
          values = [source, path, exact, cacheable, fixed_cell, entity&.kind, entity&.key, route&.index, reason]
          assign(values.freeze, route ? { route.index => route }.freeze : nil)
        end

        # @return [Symbol] :routable, :fixed or :default
        def source
          @values[0]
        end

        # @return [String] the path the router may cache (a prefix unless {#exact?})
        def path
          @values[1]
        end

        # @return [Entity, nil] the routable entity, for :routable results
        def entity
          (kind = @values[5]) && Entity.new(kind, @values[6]).freeze
        end

        # @return [RouteInfo, nil] the route Rails would pick, if any
        def route
          (index = @values[7]) && @routes[index]
        end

        # @return [String, nil] the cell a :fixed rule names (nil: the default cell)
        def fixed_cell
          @values[4]
        end

        # @return [Symbol, nil] for :default results, :no_route or :no_rule
        def reason
          @values[8]
        end

        # Only this exact path may be cached, not the paths below it.
        def exact?
          @values[2]
        end

        # Whether the router may cache the answer at all (false for `/`, `/dashboard`, unknown routes).
        def cacheable?
          @values[3]
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
          "#<#{Result.name} #{source} #{path.inspect}#{exact? ? ' exact' : ''}#{cacheable? ? '' : ' uncacheable'}" \
            "#{entity ? " entity=#{entity}" : ''}#{route ? " route=#{route}" : ''}>"
        end
        alias to_s inspect

        protected

        def to_a
          [source, path, exact?, cacheable?, entity, route, fixed_cell, reason]
        end

        private

        def assign(values, routes)
          @values = values
          @routes = routes
          freeze
        end

        # A Result the native classifier allocates itself (no `initialize` runs): it sets
        # `@values` (the native answer, see FIELDS, frozen with its path) and `@routes` (the
        # classifier's RouteInfo list, to look the route index up in), then freezes it.
        # @api private
        class FromNative < Result
          def initialize(*)
            raise NotImplementedError, "only the native classifier builds #{self.class.name}"
          end
        end
        private_constant :FromNative
      end
    end
  end
end
