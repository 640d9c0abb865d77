# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # A route that matched, with the path parameters Rails would extract (unescaped).
      RouteMatch = Struct.new(:route, :params)

      # Compiled routes plus learn rules. Immutable once built: share one instance across
      # every Puma thread.
      class Classifier
        ENGINES = %i[auto dense lazy segment_tree].freeze

        # @param routes [Array<Hash>, String] route definitions in the corpus format
        #   (`verb`, `path`, `requirements`, `defaults`, `dynamic_constraints`, `mounted`), in
        #   definition order, or the same as a JSON string
        # @param rules [Hash, String, nil] learn rules (see rules/gitlab.json); GitLab's defaults when nil
        # @param engine [Symbol] :auto, :dense, :lazy or :segment_tree (no automaton: every
        #   route must be plain, +/literal+ and +/:param+ segments only; :auto picks it for such
        #   a table)
        # @param constraints [RailsConstraints, #for, nil] decides dynamic constraints and mounts when
        #   {#learn} and {#recognize} are given no block (`for(method, path_info)` returns the block)
        # @raise [InvalidRouteError] naming the route, the position and the reason
        # @raise [InvalidRulesError]
        def initialize(routes:, rules: nil, engine: :auto, constraints: nil)
          raise ArgumentError, "engine must be one of #{ENGINES.inspect}, not #{engine.inspect}" unless ENGINES.include?(engine.to_sym)
          raise ArgumentError, "constraints must respond to #for(method, path_info)" unless constraints.nil? || constraints.respond_to?(:for)

          @constraints = constraints

          routes_json = routes.is_a?(String) ? routes : JSON.generate(Array(routes))
          rules_json = rules.nil? || rules.is_a?(String) ? rules : JSON.generate(rules)
          @native = Native::Classifier.compile(routes_json, rules_json, engine.to_s)
          freeze_state
        end

        # Extracts every route of a Rails route set (mounted Rack apps, e.g. a Grape API, followed).
        #
        # @param route_set [ActionDispatch::Routing::RouteSet] e.g. `Rails.application.routes`
        # @param constraints [:rails, RailsConstraints, nil] `:rails`: routes with dynamic
        #   constraints (and mounts) are decided, when no block is given, by their own Rails
        #   constraint objects and request conditions ({RailsConstraints}), so the answer is Rails'
        #   routing decision by construction; nil: every such route holds unless a block says otherwise
        # @return [Classifier]
        def self.from_rails(route_set, rules: nil, engine: :auto, constraints: nil)
          case constraints
          when nil then new(routes: RailsRoutes.extract(route_set), rules: rules, engine: engine)
          when :rails then from_rails(route_set, rules: rules, engine: engine, constraints: RailsConstraints.new(route_set))
          when RailsConstraints then new(routes: constraints.routes_json, rules: rules, engine: engine, constraints: constraints)
          else raise ArgumentError, "constraints must be :rails, a RailsConstraints or nil, not #{constraints.inspect}"
          end
        end

        # @return [RailsConstraints, nil] what decides dynamic constraints when no block is given
        attr_reader :constraints

        # The classifier of a running Rails application: built at first use from the artifact
        # `rake cells:compile` wrote when its route digest still matches the application's routes,
        # recompiled (with a warning to `logger`) when it does not, and refreshed after
        # {RailsClassifier#routes_changed!}. In an application that bundles the gem, use
        # {Railtie.classifier}, which is this, configured from `config.cells_learn`.
        #
        # @param app [Rails::Application] e.g. `Rails.application`
        # @param artifact [String, Pathname, nil] the artifact path; nil: compile at first use
        # @param rules [Hash, String, Pathname, nil] rules, their JSON, or a path to it
        # @param logger [#warn, #info, nil] e.g. `Rails.logger`
        # @return [RailsClassifier] answers like a Classifier
        def self.for_rails(app, artifact: nil, rules: nil, engine: :auto, logger: nil)
          RailsClassifier.new(app, artifact: artifact, rules: rules, engine: engine, logger: logger)
        end

        # @param api [Class] a Grape::API subclass
        # @return [Classifier]
        def self.from_grape(api, rules: nil, engine: :auto, prefix: "")
          new(routes: GrapeRoutes.extract(api, prefix: prefix), rules: rules, engine: engine)
        end

        # Loads bytes written by {#dump}; no route is recompiled into an automaton.
        #
        # @param constraints [RailsConstraints, #for, nil] see {#initialize}
        # @raise [CorruptArtifactError] for foreign, truncated or corrupted bytes
        def self.load(bytes, constraints: nil)
          raise CorruptArtifactError, "expected a String of artifact bytes, got #{bytes.class}" unless bytes.is_a?(String)
          raise ArgumentError, "constraints must respond to #for(method, path_info)" unless constraints.nil? || constraints.respond_to?(:for)

          classifier = allocate
          classifier.instance_variable_set(:@native, Native::Classifier.load(bytes))
          classifier.instance_variable_set(:@constraints, constraints)
          classifier.send(:freeze_state)
          classifier
        end

        # The same compiled routes with other {#constraints} (the automaton is shared, not rebuilt):
        # after a development reload the routes may be the same while their constraint objects are new.
        #
        # @param constraints [RailsConstraints, #for, nil]
        # @return [Classifier]
        def with_constraints(constraints)
          return self if constraints.equal?(@constraints)
          raise ArgumentError, "constraints must respond to #for(method, path_info)" unless constraints.nil? || constraints.respond_to?(:for)

          copy = self.class.allocate
          copy.instance_variable_set(:@native, @native.share)
          copy.instance_variable_set(:@constraints, constraints)
          copy.send(:freeze_state)
          copy
        end

        # @return [String] binary bytes for {.load}
        def dump
          @native.dump
        end

        # @!method learn(method, path_info)
        #   What the router should learn about a request.
        #
        #   Defined by the native library (`classifier_learn` in ext/gitlab_cells_learn): the
        #   common call, with no block and no {#constraints}, goes from Ruby straight to the core,
        #   no Ruby method in between; with either it continues in `learn_deciding_constraints`.
        #
        #   @param method [String, Symbol] the HTTP method
        #   @param path_info [String] the request path (a query string is ignored)
        #   @yieldparam route [RouteInfo] a route with dynamic constraints (GroupUrlConstrainer...)
        #   @yieldparam params [Hash{String=>String}] its path parameters
        #   @yieldreturn [Boolean] whether the constraint holds; without a block, {#constraints}
        #     decide (`from_rails(..., constraints: :rails)`), or else all hold
        #   @return [Result]
        #   @raise [InvalidRequestError]

        # The route Rails would pick and its parameters, or nil.
        # @return [RouteMatch, nil]
        def recognize(method, path_info)
          constraint = if defined?(yield) then proc { |*args| yield(*args) }
                       elsif @constraints then @constraints.for(method, path_info)
                       end
          index, params = @native.recognize(method, path_info, constraint && wrap(constraint), @ruby_regexps)
          index && RouteMatch.new(@routes.fetch(index), params)
        end

        # Every route that matches, in the order Rails would try them (dynamic constraints not applied).
        # @return [Array<RouteMatch>]
        def matches(method, path_info)
          @native.matches(method, path_info, @ruby_regexps).map { |index, params| RouteMatch.new(route(index), params) }
        end

        # @return [Array<RouteInfo>] every route, in definition order
        attr_reader :routes

        # @return [RouteInfo]
        def route(index)
          @routes.fetch(index)
        end

        # Route definitions with what the DFA widened for each (for {Coverage}).
        # @return [Array<Hash>]
        def route_definitions
          JSON.parse(@native.routes_json)
        end

        # @return [Hash] the learn rules in force
        def rules
          JSON.parse(@native.rules_json)
        end

        # @return [String] the cell for unknown routes and entities
        def default_cell
          @native.default_cell
        end

        # @return [String] "dense", "lazy" or "segment_tree"
        def engine
          @native.engine
        end

        # @return [Integer] approximate bytes held by the compiled classifier
        def memory_usage
          @native.memory_usage
        end

        def inspect
          "#<#{self.class.name} routes=#{routes.size} engine=#{engine}>"
        end

        private

        # {#learn} with a block (`block`, a Proc) or {#constraints} (`block` nil): the native
        # `learn` hands such calls here. The native side checks and upper-cases the method, checks
        # the path and builds the frozen Result itself.
        def learn_deciding_constraints(method, path_info, block)
          constraint = block || @constraints&.for(method, path_info)
          @native.learn(method, path_info, constraint && wrap(constraint), @ruby_regexps, @routes)
        end

        def freeze_state
          definitions = route_definitions
          # Routes whose requirements only Ruby's Regexp can decide (nil: none).
          @ruby_regexps = RubyRegexps.for(definitions)
          @routes = definitions.map do |r|
            defaults = r["defaults"] || {}
            endpoint = defaults["controller"] && "#{defaults["controller"]}##{defaults["action"]}"
            RouteInfo.new(r["index"], r["verb"].to_s, r["path"], endpoint, r["name"], r["dynamic_constraints"] ? true : false).freeze
          end.freeze
          # What the native #learn reads from the handle rather than from this object's variables.
          @native.bind(!@constraints.nil?, @ruby_regexps, @routes)
          freeze
        end

        # The native side calls this with (route_index, params); we yield RouteInfo instead.
        def wrap(constraint)
          return nil unless constraint

          routes = @routes
          lambda do |index, params, conditions_only = false|
            route = routes.fetch(index)
            # HEAD: Journey chooses between the routes drawn for HEAD and the GET routes by their
            # request conditions alone; a block that cannot tell them apart decides as a whole.
            if conditions_only && constraint.respond_to?(:request_conditions_hold?)
              constraint.request_conditions_hold?(route, params)
            else
              constraint.call(route, params)
            end
          end
        end
      end
    end
  end
end
