# frozen_string_literal: true

module Gitlab
  module Cells
    module Learn
      # Reads the routes of a Grape API (grape 1.6, Mustermann::Grape patterns) into the corpus
      # format, so the same compiler classifies API requests as Grape's own router would.
      #
      # How Grape picks a route, and how the table reproduces it:
      # - Grape tries the routes of the request's method in definition order (`Router#match?`;
      #   a GET route also answers HEAD), then the auto-OPTIONS answer of the first path pattern
      #   that matches (204 with `Allow`), then `route :any` routes; a path that only another
      #   verb knows gets 405. The table therefore lists the method routes in definition order
      #   (GET as `"GET"`: Journey answers HEAD with GET routes; `"GET|HEAD"` when the API also
      #   has explicit HEAD routes, which Grape mixes with GET ones in definition order), then one
      #   `"OPTIONS"` route per path pattern (Grape's auto-OPTIONS), then the `route :any` routes
      #   with verb `""`. A 405 is no route: {Classifier#recognize} returns nil there.
      # - The path is the route's pattern (`route.path`, e.g. `/api/:version/projects/:id(.json)`)
      #   in Journey syntax; Mustermann's `?` (optional previous character, as in the
      #   `/?*path` Grape builds for globs) becomes a group.
      # - Every parameter's requirement is the sub-regexp Mustermann compiled for it, read from
      #   `route.pattern.to_regexp`: `requirements: { id: %r{[^/]+} }`, the default `[^/?#.]+`,
      #   Mustermann's look-aheads before a `.` or `-`, a glob's `.*?`, and `:version` constrained to
      #   the API's versions. `:version` stays a parameter (not the literal `v4`) because that is
      #   how Grape recognizes it: a capture whose regexp accepts only the declared versions
      #   (percent-encoded spellings included), exposed as `params[:version]`; GitLab's learn rules
      #   key on `/api/:version/...`.
      # - Mustermann also matches percent-encoded spellings of literal characters other than `/`
      #   (`/api/v4/%70rojects`, `/users%2Ejson`; `AST::Compiler#encoded`), which Journey literals
      #   do not: every route carries `encoded_literals_after` (the mount path, which Rails matches
      #   as Journey does; `""` standalone), and the classifier matches the literals after it (and
      #   the `.` before a format) either way.
      #
      # @see RailsRoutes for mounted APIs inside Rails
      module GrapeRoutes
        # Journey spec characters that Mustermann's escape could make literal but Journey cannot.
        JOURNEY_SPECIAL = "():*".chars.freeze

        # @param api [Class] a Grape::API subclass
        # @param prefix [String] a mount path placed before every route (`""` or `"/"` for none)
        # @return [Array<Hash>] routes in the corpus format, `index` = position in the result
        # @raise [Error] for a route that cannot be represented
        def self.extract(api, prefix: "")
          raise Error, "expected a Grape::API subclass, got #{api.inspect}" unless defined?(::Grape::API) && api.is_a?(Class) && api <= ::Grape::API
          unless prefix.is_a?(String) && (prefix.empty? || prefix.start_with?("/"))
            raise Error, "prefix must be \"\" or a path starting with \"/\", got #{prefix.inspect}"
          end

          routes = api.routes
          explicit_head = routes.any? { |r| r.request_method == "HEAD" }
          readers = routes.each_with_index.map { |route, i| RouteReader.new(route, "#{api} route #{i} (#{route.request_method} #{route.path})", prefix) }
          specific, any = readers.partition { |r| r.request_method != "*" }
          out = specific.map { |r| r.to_h(explicit_head: explicit_head) }
          out.concat(auto_options(api, readers))
          out.concat(any.map { |r| r.to_h(explicit_head: explicit_head) })
          out.each_with_index { |route, i| route["index"] = i }
        end

        # The Journey spec for a Grape route path (`route.path`).
        #
        # @param grape_path [String] e.g. `/api/:version/projects/:id(.json)` or `/y/?*path(.:format)`
        # @return [String] e.g. `/y(/)*path(.:format)`
        # @raise [Error] for Mustermann syntax Journey has no equivalent for
        def self.journey_spec(grape_path, where = grape_path)
          tokens = []
          i = 0
          while i < grape_path.size
            c = grape_path[i]
            case c
            when ":", "*"
              name = grape_path[(i + 1)..][/\A\w+/]
              raise Error, "#{where}: #{c} without a parameter name at byte #{i}" unless name

              tokens << "#{c}#{name}"
              i += name.size
            when "?"
              raise Error, "#{where}: '?' with nothing before it at byte #{i}" if tokens.empty?

              tokens << "(#{tokens.pop})"
            when "("
              tokens << "("
            when ")"
              group = []
              group.unshift(tokens.pop) until tokens.empty? || tokens.last == "("
              raise Error, "#{where}: unbalanced ')' at byte #{i}" if tokens.empty?

              tokens.pop
              tokens << "(#{group.join})"
            when "\\"
              literal = grape_path[i + 1]
              raise Error, "#{where}: escaped #{literal.inspect} at byte #{i} has no Journey spelling" if literal.nil? || JOURNEY_SPECIAL.include?(literal)

              tokens << literal
              i += 1
            when "{", "}", "|"
              raise Error, "#{where}: Mustermann syntax #{c.inspect} at byte #{i} has no Journey equivalent"
            else
              tokens << c
            end
            i += 1
          end
          raise Error, "#{where}: unbalanced '('" if tokens.include?("(")

          tokens.join
        end

        # Grape's auto-OPTIONS answers (`Instance#add_head_not_allowed_methods_and_options_methods`),
        # one per distinct path pattern, in Grape's order.
        def self.auto_options(api, readers)
          return [] if api.namespace_inheritable(:do_not_route_options)

          readers.group_by { |r| r.route.pattern.to_regexp }.values.filter_map do |same|
            methods = same.map(&:request_method)
            next if methods.include?("*") || methods.include?("OPTIONS")

            same.last.to_h(explicit_head: false).merge("verb" => "OPTIONS", "name" => nil)
          end
        end
        private_class_method :auto_options

        # The `(?<name>...)` groups of a regexp source, by name.
        module NamedGroups
          module_function

          # @return [Hash{String=>String}] each named group's inner source
          def parse(source)
            groups = {}
            stack = []
            i = 0
            while i < source.size
              case source[i]
              when "\\"
                i += 2
                next
              when "["
                i = skip_class(source, i)
                next
              when "("
                name = source[(i + 1)..][/\A\?<(\w+)>/, 1]
                stack << (name && [name, i + name.size + 4])
              when ")"
                open = stack.pop
                groups[open[0]] = source[open[1]...i] if open
              end
              i += 1
            end
            groups
          end

          # @return [Integer] the index after the character class starting at `start`
          def skip_class(source, start)
            depth = 0
            i = start
            while i < source.size
              case source[i]
              when "\\"
                i += 2
                next
              when "["
                depth += 1
                i += 1
                i += 1 if source[i] == "^"
                i += 1 if source[i] == "]" # a leading ']' is literal
                next
              when "]"
                depth -= 1
                return i + 1 if depth.zero?
              end
              i += 1
            end
            i
          end
        end

        # One Grape route, read into the corpus format.
        class RouteReader
          attr_reader :route

          def initialize(route, where, prefix)
            @route = route
            @where = where
            @prefix = prefix
          end

          # @return [String] `"GET"`, ..., or `"*"` for `route :any`
          def request_method
            @route.request_method
          end

          # @return [Hash] the route in the corpus format (no index yet)
          def to_h(explicit_head:)
            check!
            spec = GrapeRoutes.journey_spec(@route.path, @where)
            {
              "verb" => verb(explicit_head),
              "path" => RailsRoutes::Prefix.join(@prefix, spec),
              "name" => nil,
              "requirements" => requirements(spec),
              "defaults" => {},
              "dynamic_constraints" => false,
              "mounted" => false,
              "encoded_literals_after" => @prefix == "/" ? "" : @prefix
            }
          end

          private

          def setting(key)
            @route.app.respond_to?(:namespace_inheritable) ? @route.app.namespace_inheritable(key) : nil
          end

          def check!
            raise Error, "#{@where}: a forward_match route (Rack app mounted in Grape) matches by string prefix" if @route.options[:forward_match]

            using = (setting(:version_options) || {})[:using]
            if @route.options[:version] && using && using != :path
              raise Error, "#{@where}: Grape selects version #{@route.options[:version].inspect} by #{using}, a request " \
                           "header or parameter the classifier does not see; only `using: :path` can be represented"
            end
            return unless request_method == "GET" && setting(:do_not_route_head)

            raise Error, "#{@where}: do_not_route_head! makes Grape refuse HEAD on GET routes; Journey's table answers HEAD with GET routes"
          end

          def verb(explicit_head)
            case request_method
            when "*" then ""
            when "GET" then explicit_head ? "GET|HEAD" : "GET"
            else request_method
            end
          end

          def requirements(spec)
            regexp = @route.pattern.to_regexp
            groups = NamedGroups.parse(regexp.source)
            options = regexp.source.start_with?("\\A(?-mix:") ? 0 : regexp.options & RailsRoutes::OPTION_BITS
            names = spec.scan(/[:*](\w+)/).flatten
            names.each_with_object({}) do |name, out|
              source = groups.fetch(name) do
                raise Error, "#{@where}: parameter #{name.inspect} has no capture in Grape's regexp #{regexp.inspect}"
              end
              out[name] = { "source" => source, "options" => options }
            end
          end
        end
      end
    end
  end
end
