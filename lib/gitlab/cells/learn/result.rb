# frozen_string_literal: true

require "json"

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
          "##{index} #{verb.empty? ? "ANY" : verb} #{spec}#{endpoint ? " (#{endpoint})" : ""}"
        end
      end

      # What {Classifier#learn} learned about a request. Frozen.
      class Result
        # A Result answers from three private fields: `flags` packs the small ones into one
        # Integer — bits 0–1 the source's index in Native::SOURCES, 2 exact, 3 cacheable, 4–6
        # the entity kind's index in Native::ENTITY_KINDS, 7–8 the reason's in Native::REASONS,
        # 9 and up the route index + 1 (0: no route); `path`; and `extra`, the entity key of a
        # routable answer, the cell of a fixed one. One built in Ruby keeps them in `@values`
        # (`[flags, path, extra]`); the native classifier's (FromNative, below) reads them from
        # the core's answer. Entity and RouteInfo are built on demand.
        SOURCE_BITS = 0b11
        EXACT = 1 << 2
        CACHEABLE = 1 << 3
        KIND_SHIFT = 4
        REASON_SHIFT = 7
        ROUTE_SHIFT = 9
        private_constant :SOURCE_BITS, :EXACT, :CACHEABLE, :KIND_SHIFT, :REASON_SHIFT, :ROUTE_SHIFT

        def initialize(source:, path:, exact:, cacheable:, entity: nil, route: nil, fixed_cell: nil, reason: nil)
          path = path.dup.freeze unless path.frozen?
          flags = index_of(Native::SOURCES, source, "source") |
                  (exact ? EXACT : 0) | (cacheable ? CACHEABLE : 0) |
                  (index_of(Native::ENTITY_KINDS, entity&.kind, "entity kind") << KIND_SHIFT) |
                  (index_of(Native::REASONS, reason, "reason") << REASON_SHIFT) |
                  ((route ? route.index + 1 : 0) << ROUTE_SHIFT)
          extra = entity ? entity.key : fixed_cell
          extra = extra.dup.freeze if extra && !extra.frozen?
          assign([flags, path, extra].freeze, route ? { route.index => route }.freeze : nil)
        end

        # @return [Symbol] :routable, :fixed or :default
        def source
          Native::SOURCES[flags & SOURCE_BITS]
        end

        # @return [String] the path the router may cache (a prefix unless {#exact?})
        def path
          @values[1]
        end

        # @return [Entity, nil] the routable entity, for :routable results
        def entity
          (kind = Native::ENTITY_KINDS[(flags >> KIND_SHIFT) & 0b111]) && Entity.new(kind, extra).freeze
        end

        # @return [RouteInfo, nil] the route Rails would pick, if any
        def route
          index = (flags >> ROUTE_SHIFT) - 1
          index.negative? ? nil : @routes[index]
        end

        # @return [String, nil] the cell a :fixed rule names (nil: the default cell)
        def fixed_cell
          source == :fixed ? extra : nil
        end

        # @return [Symbol, nil] for :default results, :no_route or :no_rule
        def reason
          Native::REASONS[(flags >> REASON_SHIFT) & 0b11]
        end

        # Only this exact path may be cached, not the paths below it.
        def exact?
          flags.anybits?(EXACT)
        end

        # Whether the router may cache the answer at all (false for `/`, `/dashboard`, unknown routes).
        def cacheable?
          flags.anybits?(CACHEABLE)
        end

        def routable?
          source == :routable
        end

        def fixed?
          source == :fixed
        end

        # The learn endpoint's JSON answer for this result, decided and serialized by the native
        # core (the same rule as `cells-learn learn`): a routable entity goes to `cell`, or,
        # when no cell claims it (`cell` nil), to the default cell uncached; a fixed path to its
        # rule's cell (else `cell`, else the default); anything else to the default cell, exact
        # and uncached.
        #
        # @param cell [String, nil] the resolver's cell for a routable entity
        # @param default_cell [String] the cell for unknown routes and entities
        # @param routes_digest [String, nil] the digest of the route table that classified it
        # @param routes_version [Integer, nil] that table's version (larger is newer; see {Endpoint})
        # @return [String] JSON, e.g. `{"path":"/gitlab-org","cell":"cell_eu0","source":"routable"}`
        def answer_json(cell:, default_cell:, routes_digest: nil, routes_version: nil)
          Native.answer_json(flags, path, source == :fixed ? fixed_cell || cell : cell, default_cell, routes_digest, routes_version)
        end

        # {#answer_json} as a Hash.
        #
        # @return [Hash] e.g. `{"path" => "/gitlab-org", "cell" => "cell_eu0", "source" => "routable"}`
        def answer(cell:, default_cell:)
          JSON.parse(answer_json(cell: cell, default_cell: default_cell))
        end

        # The answer with `cell` as the cell whatever the source (for callers that already chose
        # it); see {#answer}.
        #
        # @param cell [String] the cell that serves the request
        # @return [Hash]
        def to_h(cell: fixed_cell)
          raise ArgumentError, "to_h needs a cell: this #{source} result names none" if cell.nil?

          answer(cell: cell, default_cell: cell)
        end

        def ==(other)
          other.is_a?(Result) && to_a == other.to_a
        end
        alias eql? ==

        def hash
          to_a.hash
        end

        def inspect
          "#<#{Result.name} #{source} #{path.inspect}#{exact? ? " exact" : ""}#{cacheable? ? "" : " uncacheable"}" \
            "#{entity ? " entity=#{entity}" : ""}#{route ? " route=#{route}" : ""}>"
        end
        alias to_s inspect

        protected

        def to_a
          [source, path, exact?, cacheable?, entity, route, fixed_cell, reason]
        end

        private

        def flags
          @values[0]
        end

        def extra
          @values[2]
        end

        def index_of(list, value, what)
          list.index(value) || raise(ArgumentError, "unknown #{what} #{value.inspect} (one of #{list.compact.map(&:inspect).join(", ")})")
        end

        def assign(values, routes)
          @values = values
          @routes = routes
          freeze
        end

        # A Result the native classifier wraps its answer in (no `initialize` runs), frozen. Its
        # `path`, `route` and the private `flags` and `extra` are native: it holds the core's
        # answer and the classifier's RouteInfo list, and makes the path and entity key Strings
        # on first use (each then the same frozen String).
        # @api private
        class FromNative < Result
          # Refuses outright, so there is no parent state to set up.
          def initialize(*) # rubocop:disable Lint/MissingSuper
            raise NotImplementedError, "only the native classifier builds #{self.class.name}"
          end

          # Frozen and immutable, and its data lives on the native side, which a copy would not
          # share: a copy is the object itself, as for Integer and Symbol.
          def dup
            self
          end

          def clone(freeze: nil)
            raise ArgumentError, "can't unfreeze #{Result.name}" if freeze == false

            self
          end
        end
        private_constant :FromNative
      end
    end
  end
end
