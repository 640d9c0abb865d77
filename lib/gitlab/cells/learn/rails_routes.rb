# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # Reads the routes of a real `ActionDispatch::Routing::RouteSet` (actionpack 6.1) into the
      # corpus format (see `../shared/corpus/README.md`), in the order Journey tries them.
      #
      # What each field is taken from, and why:
      # - `verb`: `route.verb` (`""` for `via: :all`, `"GET|POST"` for several).
      # - `path`: `route.path.spec.to_s`, the Journey spec Rails builds its regexp from.
      # - `requirements`: `route.path.requirements` (what Journey puts into the regexp), for the
      #   path's own parameters only. A glob's `/.+?/`, which the mapper adds to every glob of a
      #   formatted route, is the corpus default and is left out; a glob with no requirement at all
      #   (drawn with `format: false`) gets Journey's own greedy `.+`, so a later segment still sees
      #   what Rails' regexp gives it.
      # - `defaults`: `route.defaults` (controller, action, format...), keys and Symbols as Strings.
      # - `dynamic_constraints`: the route's app is `Mapper::Constraints` with constraint objects,
      #   lambdas or blocks, or `route.constraints` has request conditions (`subdomain:`, `host:`...):
      #   Rails asks those per request, so the classifier asks its host block.
      # - `mounted`: the route is unanchored (`mount`), so its path is a prefix.
      #
      # Mounts are followed where Rails would route further:
      # - a Grape API (`mount API::API => "/"`) is replaced, at the mount's place, by its own
      #   routes ({GrapeRoutes}) with the mount path as a prefix;
      # - a Rails engine (`mount Engine => "/admin/x"`) by its route set, recursively, likewise.
      # Rails tries the mount at its place; when the mounted app answers 404 with
      # `X-Cascade: pass` (Grape and engine route sets do for an unknown path), Rails goes on with
      # the next routes — exactly what an in-place expansion followed by the remaining routes
      # does. Two corners are not represented and are documented rather than guessed: Grape's 405
      # for a path known under another verb is not cascaded by Rails but is no route here (later
      # routes are tried), and Rails' mount regexp `\A/api(?:\b|\Z|/)` also lets `/api.json` or
      # `/api-x` reach the app as `/.json` and `/-x`, which the prefixed specs do not match. Other
      # Rack apps (Sidekiq::Web...) stay one `mounted: true` route.
      #
      # Anything that cannot be represented raises {Error} naming the route; no route is dropped.
      module RailsRoutes
        # The lazy glob default the mapper adds (`wildcard_options`); the corpus default too.
        LAZY_GLOB = /.+?/
        # Journey's glob regexp when no requirement was given (`AnchoredRegexp#visit_STAR`).
        GREEDY_GLOB = { "source" => ".+", "options" => 0 }.freeze
        # Regexp option bits the corpus format carries (i, x, m).
        OPTION_BITS = Regexp::IGNORECASE | Regexp::EXTENDED | Regexp::MULTILINE

        # @param route_set [ActionDispatch::Routing::RouteSet]
        # @param sources [Array, nil] when given, receives for each extracted route (same index) the
        #   Journey routes Rails passes through to reach it, outermost mount first ({RailsConstraints})
        # @return [Array<Hash>] routes in the corpus format, `index` = position in the result
        # @raise [Error] for a route that cannot be represented
        def self.extract(route_set, sources: nil)
          unless route_set.respond_to?(:routes) && route_set.routes.respond_to?(:routes)
            raise Error, "expected an ActionDispatch::Routing::RouteSet, got #{route_set.class}"
          end

          out = Extractor.new(sources).walk(route_set, Prefix::ROOT, [])
          out.each_with_index { |route, i| route["index"] = i }
        end

        # A mount path the routes of a followed app are placed under, with its requirements.
        Prefix = Struct.new(:spec, :requirements, :dynamic, :where, :mounts) do
          # Joins a mount spec and an inner spec (both start with `/`) as Rails reaches the inner
          # route: the mounted app sees `/` + what follows the mount path.
          def self.join(outer, inner)
            return inner if outer.empty? || outer == "/"
            return outer if inner == "/"

            outer + inner
          end

          def join(inner)
            Prefix.join(spec, inner)
          end

          # Adds the mount's requirements and dynamic constraints to a route read from the
          # mounted app (whose path already carries the prefix).
          def merge_into(route, where)
            route["requirements"] = requirements.merge(route["requirements"]) do |name|
              raise Error, "#{where}: parameter #{name.inspect} is both in the mount path and in the mounted route"
            end
            route["dynamic_constraints"] ||= dynamic
            route
          end
        end
        Prefix::ROOT = Prefix.new("/", {}.freeze, false, nil, [].freeze).freeze

        # Walks one route set, following mounts.
        class Extractor
          # @param sources [Array, nil] see {RailsRoutes.extract}
          def initialize(sources = nil)
            @sources = sources
          end

          # @return [Array<Hash>] `out`, with this route set's routes appended
          def walk(route_set, prefix, out, depth = 0)
            raise Error, "mounts nested deeper than 16 levels at #{prefix.where}" if depth > 16

            route_set.routes.routes.each_with_index do |route, i|
              where = [prefix.where, "route #{i} (#{route.verb.empty? ? "ANY" : route.verb} #{route.path.spec})"].compact.join(" > ")
              if route.path.anchored
                out << RouteReader.new(route, prefix, where).to_h
                @sources&.push(prefix.mounts + [route])
              else
                mount(route, prefix, where, out, depth)
              end
            end
            out
          end

          private

          def mount(route, prefix, where, out, depth)
            reader = RouteReader.new(route, prefix, where)
            app = reader.endpoint_app
            if grape_api?(app)
              inner_prefix = reader.mount_prefix
              GrapeRoutes.extract(app, prefix: inner_prefix.spec).each do |grape_route|
                out << inner_prefix.merge_into(grape_route, where)
                @sources&.push(inner_prefix.mounts)
              end
            elsif engine?(app)
              walk(app.routes, reader.mount_prefix, out, depth + 1)
            else
              out << reader.to_h
              @sources&.push(prefix.mounts + [route])
            end
          end

          def grape_api?(app)
            defined?(::Grape::API) && app.is_a?(Class) && app <= ::Grape::API
          end

          def engine?(app)
            app.respond_to?(:routes) && app.routes.is_a?(ActionDispatch::Routing::RouteSet)
          end
        end

        # One Journey route, read into the corpus format.
        class RouteReader
          # @param route [ActionDispatch::Journey::Route]
          # @param prefix [Prefix] the mount it is reached through
          # @param where [String] for error messages
          def initialize(route, prefix, where)
            @route = route
            @prefix = prefix
            @where = where
          end

          # @return [Hash] the route in the corpus format (no index yet); `request_conditions`
          #   only when true (Journey checks them before choosing HEAD routes over GET ones)
          def to_h
            conditions = !@route.constraints.empty?
            {
              "verb" => @route.verb.to_s,
              "path" => @prefix.join(@route.path.spec.to_s),
              "name" => @route.name&.to_s,
              "requirements" => @prefix.requirements.merge(requirements) { |name| duplicate(name) },
              "defaults" => Values.defaults(@route.defaults, @where),
              "dynamic_constraints" => @prefix.dynamic || dynamic?,
              "mounted" => !@route.path.anchored
            }.merge(conditions ? { "request_conditions" => true } : {})
          end

          # The Rack app behind the route: a mount's app, a redirect, a lambda, or the dispatcher.
          def endpoint_app
            app = @route.app
            app.is_a?(ActionDispatch::Routing::Mapper::Constraints) ? app.app : app
          end

          # The prefix the mounted app's routes are placed under.
          # @raise [Error] for a mount restricted to some verbs (the inner routes carry their own)
          def mount_prefix
            unless @route.verb.to_s.empty?
              raise Error, "#{@where}: a mount restricted to #{@route.verb} cannot be followed into " \
                           "#{endpoint_app}; mount it with via: :all"
            end

            Prefix.new(@prefix.join(@route.path.spec.to_s), @prefix.requirements.merge(requirements) { |name| duplicate(name) },
                       @prefix.dynamic || dynamic?, @where, @prefix.mounts + [@route]).freeze
          end

          private

          def dynamic?
            app = @route.app
            blocks = app.is_a?(ActionDispatch::Routing::Mapper::Constraints) && !app.constraints.empty?
            blocks || !@route.constraints.empty?
          end

          def requirements
            path = @route.path
            stars = path.spec.find_all { |node| node.type == :STAR }.map { |node| node.name.to_s }
            path.names.each_with_object({}) do |name, out|
              value = path.requirements[name.to_sym]
              if stars.include?(name)
                next if value == LAZY_GLOB

                out[name] = value.nil? ? GREEDY_GLOB.dup : Values.requirement(name, value, @where)
              elsif !value.nil?
                out[name] = Values.requirement(name, value, @where)
              end
            end
          end

          def duplicate(name)
            raise Error, "#{@where}: parameter #{name.inspect} is both in the mount path and in the mounted route"
          end
        end

        # Conversions of requirement and default values, shared with {GrapeRoutes}.
        module Values
          module_function

          # @return [Hash] `{"source", "options"}` or `{"literal"}`
          # @raise [Error] for a requirement Journey accepts but the corpus format cannot carry
          def requirement(name, value, where)
            case value
            when Regexp
              extra = value.options & ~(OPTION_BITS | Regexp::FIXEDENCODING | Regexp::NOENCODING)
              raise Error, "#{where}: requirement #{name}=#{value.inspect} has Regexp options #{extra} the format cannot carry" unless extra.zero?

              { "source" => value.source, "options" => value.options & OPTION_BITS }
            when String
              { "literal" => value }
            when Symbol, Integer
              { "literal" => value.to_s }
            when Array
              # `constraints: { idx: %w[first last] }`: Journey matches `Regexp.union(value)`
              # (`Path::Pattern::AnchoredRegexp#visit_SYMBOL`), so the table carries that.
              requirement(name, Regexp.union(value.map { |v| v.is_a?(Regexp) ? v : v.to_s }), where)
            else
              raise Error, "#{where}: requirement #{name}=#{value.inspect} (#{value.class}) is neither a Regexp nor a String"
            end
          end

          # @return [Hash{String=>Object}] JSON-safe defaults
          def defaults(defaults, _where = nil)
            defaults.to_h { |key, value| [key.to_s, json_value(value)] }
          end

          # A default as JSON: scalars as they are, Symbols as Strings, Arrays and Hashes member by
          # member; anything else — a Rack app (`resources :users, to: app`), a constraint object
          # (`scope constraint: obj`) — as `#<ClassName>`: routing never compares defaults, and
          # refusing them would refuse a table Rails routes.
          def json_value(value)
            case value
            when String, Integer, Float, true, false, nil then value
            when Symbol then value.to_s
            when Array then value.map { |v| json_value(v) }
            when Hash then defaults(value)
            else "#<#{value.class.name || value.class.inspect}>"
            end
          end
        end
      end
    end
  end
end
