# frozen_string_literal: true

require "rack"

module Gitlab
  module Cells
    module Learn
      # Decides routes with dynamic constraints by asking the route's own Rails objects, as
      # `Journey::Router#serve` does, instead of a hand-written block that re-implements GitLab's
      # constrainers. For the route the classifier offers, with the method and path asked about:
      #
      # 1. a request is built for them (`Rack::MockRequest.env_for`, `HTTP_HOST` = `host:`), as an
      #    `ActionDispatch::Request`;
      # 2. for each Journey route Rails passes through to reach it (the mounts around it, then the
      #    route): `route.matches?(req)` (request conditions: `subdomain:`, `host:`, `port:`...,
      #    the verb); `req.path_parameters` set to the route's defaults and the classifier's
      #    parameters, as `serve` sets them; then, when the route's app is a
      #    `Mapper::Constraints`, its `matches?(req)` — each constraint object's `matches?`, each
      #    lambda called with the arity Rails uses;
      # 3. a mounted Rack app that is not followed (not a Grape API, not an engine) cannot be asked
      #    without running it (it answers `X-Cascade: pass` at run time): `mounts:` decides, a
      #    callable `(RouteInfo, params, request) -> Boolean`, default true (the app claims the path).
      #
      # An exception raised by a constraint (a database error in a constrainer) leaves
      # {Classifier#learn} as {Endpoint::ConstraintFailure} (an {Error}; `#original` is the
      # exception), which the Endpoint answers with 503 `constraint_failed`.
      #
      # What a learn request cannot know: the original request's headers and body. The request
      # built here has only the method, the path and `host:`; `Accept` is absent, so a
      # `req.format == :json` lambda sees the format the path's extension gives (`.json`) and
      # otherwise `:html`, as Rails does for a request without `Accept`; cookies, sessions and
      # `remote_ip` are empty. A constraint that reads them decides as it would for such a request.
      #
      # Engines: the inner routes are asked with the full path (Rails would shift `script_name`);
      # their constraints rarely read `path_info`.
      #
      # @example
      #   classifier = Gitlab::Cells::Learn::Classifier.from_rails(Rails.application.routes, constraints: :rails)
      #   classifier.learn("GET", "/gitlab-org")  # GroupUrlConstrainer asked, as Rails would ask it
      class RailsConstraints
        # @param route_set [ActionDispatch::Routing::RouteSet] the routes the classifier was built from
        # @param host [String] the `Host` of the built requests (GitLab's external host)
        # @param mounts [#call, Boolean] for unfollowed mounted apps: a callable, or a fixed answer
        # @raise [ArgumentError] for a host that is not a String
        def initialize(route_set, host: "localhost", mounts: true)
          raise ArgumentError, "host must be a String, not #{host.class}" unless host.is_a?(String)
          raise ArgumentError, "mounts must be true, false or respond to #call" unless [true, false].include?(mounts) || mounts.respond_to?(:call)

          @sources = []
          @routes_json = RailsRoutes.extract(route_set, sources: @sources)
          @sources.freeze
          @host = host
          @mounts = mounts
        end

        # @return [Array<Hash>] the extracted route table the sources align with
        # @api private
        attr_reader :routes_json

        # Whether Rails would let `route` answer `method path_info`.
        #
        # @param route [RouteInfo] offered by the classifier
        # @param params [Hash{String=>String}] its path parameters
        # @return [Boolean]
        # @raise [Error] when the route is not one this object was built for
        def matches?(route, params, method, path_info)
          chain = @sources.fetch(route.index) do
            raise Error, "route #{route.index} is not in the route set these constraints were built from"
          end
          req = request(method, path_info)
          chain.each do |journey_route|
            return false unless conditions_hold?(journey_route, req)

            req.path_parameters = journey_route.defaults.merge(params.transform_keys(&:to_sym))
            app = journey_route.app
            if app.is_a?(ActionDispatch::Routing::Mapper::Constraints)
              return false unless app.matches?(req)

              app = app.app
            end
            return false if unfollowed_mount?(journey_route, app) && !mount_claims?(route, params, req)
          end
          true
        rescue Error
          raise
        rescue StandardError => e
          # The Endpoint and the Middleware answer this with 503 `constraint_failed`, as for their own
          # `constraint:` block; `#original` is what the constraint raised.
          raise Endpoint::ConstraintFailure, e
        end

        # Whether the request conditions (`subdomain:`, `host:`, `port:`...) of every Journey route
        # Rails passes through to reach `route` hold, without asking constraint objects: what
        # `Journey::Router#match_head_routes` checks to choose the routes drawn for HEAD over the
        # GET routes. The classifier asks this for a HEAD route with request conditions.
        #
        # @return [Boolean]
        def request_conditions_hold?(route, _params, method, path_info)
          chain = @sources.fetch(route.index) do
            raise Error, "route #{route.index} is not in the route set these constraints were built from"
          end
          req = request(method, path_info)
          chain.all? { |journey_route| conditions_hold?(journey_route, req) }
        rescue Error
          raise
        rescue StandardError => e
          raise Endpoint::ConstraintFailure, e
        end

        # One request's decisions: what {Classifier#learn} and {Classifier#recognize} use as
        # their block; `call(route, params)` is {#matches?}, `request_conditions_hold?(route,
        # params)` the HEAD question.
        Decision = Struct.new(:constraints, :verb, :path_info) do
          def call(route, params)
            constraints.matches?(route, params, verb, path_info)
          end

          def request_conditions_hold?(route, params)
            constraints.request_conditions_hold?(route, params, verb, path_info)
          end

          def to_proc
            method(:call).to_proc
          end
        end

        # The decisions for one request.
        #
        # @return [Decision] responds to `call(RouteInfo, params) -> Boolean`
        def for(method, path_info)
          Decision.new(self, method, path_info).freeze
        end

        def inspect
          "#<#{self.class.name} routes=#{@sources.size} host=#{@host}>"
        end

        private

        def request(method, path_info)
          # PATH_INFO set as given (still percent-encoded, as Rails routes it): env_for would parse it as a URI.
          env = Rack::MockRequest.env_for("/", "REQUEST_METHOD" => method.to_s.upcase, "HTTP_HOST" => @host)
          env["PATH_INFO"] = path_info
          ActionDispatch::Request.new(env)
        end

        # `route.matches?(req)`; for HEAD, as `Journey::Router#match_head_routes` asks a route not
        # drawn for HEAD: with the request method set to GET for the check.
        def conditions_hold?(journey_route, req)
          return journey_route.matches?(req) unless req.request_method == "HEAD" && !journey_route.verb.split("|").include?("HEAD")

          begin
            req.request_method = "GET"
            journey_route.matches?(req)
          ensure
            req.request_method = "HEAD"
          end
        end

        def unfollowed_mount?(journey_route, app)
          return false if journey_route.path.anchored
          return false if defined?(::Grape::API) && app.is_a?(Class) && app <= ::Grape::API

          !(app.respond_to?(:routes) && app.routes.is_a?(ActionDispatch::Routing::RouteSet))
        end

        def mount_claims?(route, params, req)
          @mounts.respond_to?(:call) ? @mounts.call(route, params, req) : @mounts
        end
      end
    end
  end
end
