# frozen_string_literal: true

require "json"
require_relative "endpoint"
require_relative "cache_header"
require_relative "resolution"

module Gitlab
  module Cells
    module Learn
      # Rack middleware each cell runs in front of the application:
      #
      # - a request for a routable entity that another cell owns (the router's cache is stale: the
      #   entity moved) is answered `421 Misdirected Request` with `X-Gitlab-Cell-Owner: <cell>`, without
      #   calling the application; the router drops its entry, re-learns and retries;
      # - every other response below 500 whose classification is cacheable gets
      #   `X-Gitlab-Cell-Cache: path=...; cell=...[; exact]` (see {CacheHeader}), so that the router
      #   learns from normal traffic without asking the learn endpoint, unless the application set one;
      # - the health answer (`health_path`, GitLab's `/-/readiness`, which the router probes) gets the
      #   cell's route table as `X-Gitlab-Cell-Routes-Version` and `X-Gitlab-Cell-Routes-Digest` (see
      #   {RouteTable}), so the router knows which cells run the newest routes before it asks them.
      #
      # The middleware never breaks a request: an unclassifiable request, a failing resolver or
      # constraint, or an answer that is not a cell name is logged and the request served without the
      # header. The path classified is `SCRIPT_NAME + PATH_INFO`, the path the router saw.
      #
      # @example config.ru / an initializer
      #   use Gitlab::Cells::Learn::Middleware, classifier: classifier, cell: "cell_eu0",
      #       resolver: ->(entity) { Cells::Resolver.cell_name_for(entity.kind, entity.key) }
      class Middleware
        # The header naming the owner on a 421.
        OWNER_HEADER = "X-Gitlab-Cell-Owner"

        # @param app [#call] the Rack application
        # @param classifier [Classifier]
        # @param resolver [#call] Entity -> cell name (String) or nil when no cell claims the entity
        # @param cell [String] this cell's name
        # @param default_cell [String] the cell for unknown routes and fixed rules without a cell
        # @param constraint [#call, nil] (RouteInfo, params) -> Boolean for dynamic-constraint routes
        # @param cells [Array<String>, nil] the configured cells; a resolver answer outside them is logged
        #   and ignored (nil: any valid cell name is accepted)
        # @param misdirected [Boolean] answer 421 for entities another cell owns (false: serve them)
        # @param skip [Array<String>] paths (and the paths below them) left alone, e.g. the learn endpoint
        # @param logger [#warn, nil] told about resolver and constraint failures
        # @param health_path [String, nil] the path whose answers carry the route table headers
        # @param routes_version [Integer, nil] this deploy's route table version (see {RouteTable})
        # @raise [ArgumentError] for invalid cell names, version, or a resolver that cannot be called
        def initialize(app, classifier:, resolver:, cell:, default_cell: classifier.default_cell, constraint: nil,
                       cells: nil, misdirected: true, skip: [Endpoint::MOUNT_PATH], logger: nil,
                       health_path: "/-/readiness", routes_version: nil)
          raise ArgumentError, "resolver must respond to #call" unless resolver.respond_to?(:call)
          raise ArgumentError, "constraint must respond to #call" unless constraint.nil? || constraint.respond_to?(:call)

          @app = app
          @classifier = classifier
          @resolver = resolver
          @cell = cell_name!(cell, "cell")
          @default_cell = cell_name!(default_cell, "default_cell")
          @constraint = constraint
          @cells = cells&.map { |name| cell_name!(name, "cells entry") }&.freeze
          @misdirected = misdirected ? true : false
          @skip = Array(skip).map { |path| path.chomp("/").dup.freeze }.freeze
          @logger = logger
          @health_path = health_path&.dup&.freeze
          @route_table = RouteTable.new(classifier, routes_version)
          freeze
        end

        # @return [String] this cell's name
        attr_reader :cell

        # The Rack interface.
        #
        # @param env [Hash] the Rack environment
        # @return [Array(Integer, Hash, #each)]
        def call(env)
          method = env["REQUEST_METHOD"]
          path = full_path(env)
          return health(env) if path == @health_path
          return @app.call(env) if skip?(path)

          result = learned(method, path)
          return @app.call(env) unless result

          serving = serving_cell(result)
          return misdirected(method, result, serving) if @misdirected && result.routable? && serving && serving != @cell

          status, headers, body = @app.call(env)
          [status, cache_header(headers, status, result, serving), body]
        end

        def inspect
          "#<#{self.class.name} cell=#{@cell} default_cell=#{@default_cell} misdirected=#{@misdirected}>"
        end

        private

        def full_path(env)
          path = "#{env["SCRIPT_NAME"]}#{env["PATH_INFO"]}"
          path.empty? ? "/" : path
        end

        def health(env)
          status, headers, body = @app.call(env)
          table = @route_table.headers
          return [status, headers, body] if table.empty?

          [status, headers.frozen? ? headers.merge(table) : headers.merge!(table), body]
        end

        def skip?(path)
          @skip.any? { |prefix| path == prefix || path.start_with?("#{prefix}/") }
        end

        def learned(method, path)
          @classifier.learn(method, path, &@constraint)
        rescue InvalidRequestError => e
          log("not classified: #{e.message}")
          nil
        rescue StandardError => e
          log("route constraint failed for #{method} #{path}: #{e.class}: #{e.message}")
          nil
        end

        # The cell that serves a result, or nil when none may be advertised.
        def serving_cell(result)
          case result.source
          when :routable then resolve(result.entity)
          when :fixed then result.fixed_cell || @default_cell
          else @default_cell
          end
        end

        def resolve(entity)
          Resolution.cell_for(@resolver, entity, cells: @cells)
        rescue Resolution::Failed => e
          log(e.log_message)
          nil
        end

        def misdirected(method, result, owner)
          json = JSON.generate(
            "error" => "misdirected_request",
            "message" => "#{result.entity} (#{result.path}) is served by #{owner}, not #{@cell}",
            "cell" => owner,
            "path" => result.path
          )
          Endpoint.json_response(421, json, { Endpoint.header(OWNER_HEADER) => owner }, head: method == "HEAD")
        end

        def cache_header(headers, status, result, serving)
          return headers unless serving && status.to_i < 500
          return headers if headers.any? { |name, _| CacheHeader::NAME.casecmp?(name) }

          value = header_value(result, serving)
          return headers unless value

          headers = headers.dup if headers.frozen?
          headers[Endpoint.header(CacheHeader::NAME)] = value
          headers
        end

        def header_value(result, serving)
          CacheHeader.for_result(result, cell: serving)
        rescue InvalidHeaderError => e
          log("no #{CacheHeader::NAME} for #{result.path}: #{e.message}")
          nil
        end

        def cell_name!(name, what)
          return name.dup.freeze if CacheHeader.valid_cell?(name)

          raise ArgumentError, "#{what} #{name.inspect} is not a valid cell name (1 to 64 of A-Z a-z 0-9 _ . -)"
        end

        def log(message)
          @logger&.warn("[#{self.class.name}] #{message}")
        end
      end
    end
  end
end
