# frozen_string_literal: true

require "json"
require "openssl"
require "rack"
require_relative "cache_header"
require_relative "resolution"

module Gitlab
  module Cells
    module Learn
      # The learn endpoint: a Rack app the router asks, before forwarding a request it has no cache
      # entry for, which cell serves it.
      #
      #   GET /api/v4/cells/learn?method=GET&path_info=/gitlab-org/gitlab-test/-/issues
      #   200 {"path":"/gitlab-org/gitlab-test","cell":"cell_0","source":"routable"}
      #
      # `path_info` is the request's raw path (still percent-encoded), itself encoded as a query
      # parameter (`%` as `%25`, `+` as `%2B`, `&` as `%26`; a raw `+` decodes to a space).
      #
      # Answers:
      # - `:routable` results: the cell the resolver names for the entity. When the resolver answers
      #   nil (an entity no cell claims: a group that does not exist yet, a typo) the answer is the
      #   default cell with `"cacheable":false`, so that the router forwards to the default cell (which
      #   answers 404 or creates the entity) but never caches the prefix as belonging to it.
      # - `:fixed` results: the rule's cell, or the default cell when the rule names none.
      # - `:default` results (no route, no rule): the default cell, never cacheable.
      #
      # Errors are JSON `{"error":"<code>","message":"<text>"}`: 400 `missing_parameter`,
      # `duplicate_parameter`, `invalid_parameter`, `invalid_query`, `invalid_request`; 405
      # `method_not_allowed` (with `Allow: GET`); 414 `path_too_long`; 503 `resolver_failed`,
      # `invalid_resolver_answer`, `constraint_failed`; 401 `unauthorized` when a token is configured
      # and the request does not carry it. Every answer has `Cache-Control: no-store`: the router keeps
      # its own cache with its own TTL.
      #
      # Which cell holds a namespace is private (the reason for the router's 404 delay), so in
      # production the endpoint takes a shared secret, `token:`, that the router sends in
      # `X-Gitlab-Cell-Learn-Token` (its `learn_token_file`). Up to two tokens are accepted at once,
      # so that the secret can be rotated without a moment where routers and cells disagree: add the
      # new token to every cell (`token: [old, new]`), switch the routers to the new one, then
      # remove the old one from the cells. Tokens are compared in constant time (SHA-256 digests
      # through `OpenSSL.fixed_length_secure_compare`, so neither content nor length leaks) and are
      # never logged or shown by `#inspect`.
      #
      # Immutable and stateless: one instance serves every Puma thread.
      #
      # @example Rails routes
      #   mount Gitlab::Cells::Learn::Endpoint.new(
      #     classifier: Gitlab::Cells::Learn::Classifier.from_rails(Rails.application.routes),
      #     resolver: ->(entity) { Cells::Resolver.cell_name_for(entity.kind, entity.key) }
      #   ) => "/api/v4/cells/learn"
      class Endpoint
        # Where GitLab mounts the endpoint.
        MOUNT_PATH = "/api/v4/cells/learn"

        # An HTTP method: an RFC 9110 token.
        TOKEN = /\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}\z/

        # Bytes a request path never contains raw.
        CONTROL = /[\x00-\x1f\x7f]/
        private_constant :CONTROL

        PARAMS = %w[method path_info].freeze
        private_constant :PARAMS

        # The header carrying the router's learn token, and its Rack env key.
        TOKEN_HEADER = "X-Gitlab-Cell-Learn-Token"
        TOKEN_ENV = "HTTP_X_GITLAB_CELL_LEARN_TOKEN"

        # A token: what the router can send, 1 to 1024 visible ASCII characters.
        TOKEN_FORMAT = /\A[\x21-\x7e]{1,1024}\z/
        private_constant :TOKEN_FORMAT

        # Raised out of the constraint wrapper so that a failing lookup becomes a 503.
        # @api private
        class ConstraintFailure < Error
          # @return [Exception] what the constraint raised
          attr_reader :original

          def initialize(original)
            @original = original
            super("the route constraint raised #{original.class}")
          end
        end

        # A header name as this Rack version wants it (Rack 3 requires lower case).
        #
        # @api private
        # @param name [String] e.g. "Content-Type"
        # @return [String]
        def self.header(name)
          RACK3 ? name.downcase : name
        end

        RACK3 = Gem::Version.new(Rack.release) >= Gem::Version.new("3")
        private_constant :RACK3

        # A JSON answer that no cache keeps, as the endpoint and the middleware's 421 send it.
        #
        # @api private
        # @param status [Integer]
        # @param json [String]
        # @param extra [Hash] more headers
        # @param head [Boolean] a HEAD request: headers only
        # @return [Array(Integer, Hash, Array<String>)]
        def self.json_response(status, json, extra = {}, head: false)
          headers = {
            header("Content-Type") => "application/json",
            header("Cache-Control") => "no-store",
            header("Content-Length") => json.bytesize.to_s
          }
          [status, headers.merge!(extra), head ? [] : [json]]
        end

        # @param classifier [Classifier]
        # @param resolver [#call] Entity -> cell name (String) or nil when no cell claims the entity
        # @param default_cell [String] the cell for unknown routes and entities
        # @param constraint [#call, nil] (RouteInfo, params) -> Boolean for routes with dynamic
        #   constraints (in GitLab: does the group, project or user exist); nil: all hold
        # @param max_path_length [Integer] longest `path_info` accepted, in bytes; longer gets 414
        # @param logger [#warn, nil] told about resolver and constraint failures
        # @param token [String, Array<String>, nil] the shared secret learn requests must carry in
        #   `X-Gitlab-Cell-Learn-Token` (an Array of one or two while rotating); nil: no check (only
        #   for development: anyone who can reach a cell learns where every namespace lives)
        # @param routes_version [Integer, nil] this deploy's route table version, larger for newer code
        #   (see {RouteTable}); answers carry it and the classifier's digest as `"routes_version"` and
        #   `"routes_digest"`
        # @raise [ArgumentError] for a resolver that cannot be called, an invalid default cell, limit
        #   or token
        def initialize(classifier:, resolver:, default_cell: classifier.default_cell, constraint: nil,
                       max_path_length: 8192, logger: nil, token: nil, routes_version: nil)
          raise ArgumentError, "resolver must respond to #call" unless resolver.respond_to?(:call)
          raise ArgumentError, "constraint must respond to #call" unless constraint.nil? || constraint.respond_to?(:call)
          raise ArgumentError, "invalid default cell name #{default_cell.inspect}" unless CacheHeader.valid_cell?(default_cell)
          unless max_path_length.is_a?(Integer) && max_path_length.positive?
            raise ArgumentError, "max_path_length must be a positive Integer, not #{max_path_length.inspect}"
          end

          @classifier = classifier
          @resolver = resolver
          @default_cell = default_cell.dup.freeze
          @constraint = constraint && guard(constraint)
          @max_path_length = max_path_length
          @logger = logger
          @token_digests = token_digests(token)
          @route_table = RouteTable.new(classifier, routes_version)
          freeze
        end

        # @return [String]
        attr_reader :default_cell

        # @return [Integer]
        attr_reader :max_path_length

        # @return [RouteTable]
        attr_reader :route_table

        # The Rack interface.
        #
        # @param env [Hash] the Rack environment
        # @return [Array(Integer, Hash, Array<String>)]
        def call(env)
          verb = env["REQUEST_METHOD"]
          unless authorized?(env[TOKEN_ENV])
            status, headers, body = error(401, "unauthorized", "the learn endpoint needs a valid #{TOKEN_HEADER} header")
            return [status, headers, verb == "HEAD" ? [] : body]
          end

          unless verb == "GET"
            status, headers, body = error(405, "method_not_allowed", "the learn endpoint answers GET only, not #{verb}",
                                          self.class.header("Allow") => "GET")
            return [status, headers, verb == "HEAD" ? [] : body]
          end

          method, path_info = read_params(env["QUERY_STRING"].to_s)
          respond(200, learn_json(method, path_info))
        rescue RequestError => e
          error(e.status, e.code, e.message)
        end

        # The JSON answer for a request, as a Hash ({#learn_json} parsed).
        #
        # @param method [String] the HTTP method of the request to learn about
        # @param path_info [String] its path
        # @return [Hash] e.g. `{"path" => "/gitlab-org", "cell" => "cell_0", "source" => "routable"}`
        # @raise [RequestError] with the status and code {#call} answers
        def learn(method, path_info)
          JSON.parse(learn_json(method, path_info))
        end

        # {#learn}'s answer as the JSON {#call} sends, written by the native core.
        #
        # @return [String]
        # @raise [RequestError]
        def learn_json(method, path_info)
          instrument(method, path_info) do |payload|
            result = learned(method, path_info)
            json = result.answer_json(cell: result.routable? ? resolve(result.entity) : nil, default_cell: default_cell,
                                      routes_digest: @route_table.digest, routes_version: @route_table.version)
            payload&.merge!(JSON.parse(json).transform_keys(&:to_sym), route: result.route&.to_s)
            json
          end
        end

        # The `ActiveSupport::Notifications` event {#learn_json} publishes, once per answer, when
        # ActiveSupport is loaded and something subscribes: payload `:method`, `:path_info` (the
        # request asked about), `:source`, `:cell`, `:path`, `:cacheable` (as in the answer),
        # `:route` (the route Rails would pick, or nil); `event.duration` is the time the answer
        # took (classification, constraint and resolver included). A request refused while it is
        # answered (400 `invalid_request`, 414, 503) carries `:exception`; one refused for its query
        # parameters (405, missing or invalid `method`/`path_info`) publishes nothing. Nothing is
        # built when no one listens.
        EVENT = "learn.gitlab_cells"

        def inspect
          "#<#{self.class.name} default_cell=#{default_cell} max_path_length=#{max_path_length} " \
            "token=#{@token_digests ? "[#{@token_digests.size} configured]" : "none"}>"
        end

        # A request the endpoint refuses, with its HTTP status and JSON error code.
        class RequestError < Error
          # @return [Integer]
          attr_reader :status
          # @return [String]
          attr_reader :code

          def initialize(status, code, message)
            @status = status
            @code = code
            super(message)
          end
        end

        private

        def token_digests(token)
          return nil if token.nil?

          tokens = token.is_a?(Array) ? token : [token]
          if tokens.empty? || tokens.size > 2
            raise ArgumentError, "token must be a String or an Array of one or two Strings (two while rotating), " \
                                 "not an Array of #{tokens.size}"
          end
          tokens.each_with_index.map do |t, i|
            what = token.is_a?(Array) ? "token[#{i}]" : "token"
            raise ArgumentError, "#{what} must be a String, not #{t.class}" unless t.is_a?(String)

            unless t.valid_encoding? && TOKEN_FORMAT.match?(t)
              raise ArgumentError, "#{what} must be 1 to 1024 visible ASCII characters (no spaces or control characters); " \
                                   "it is #{t.bytesize} bytes"
            end

            OpenSSL::Digest::SHA256.digest(t).freeze
          end.freeze
        end

        # Constant time whatever is sent: the digest of the candidate is compared with every
        # configured digest, without stopping at the first match.
        def authorized?(given)
          return true unless @token_digests

          digest = OpenSSL::Digest.digest("SHA256", given.is_a?(String) ? given : "")
          @token_digests.map { |d| OpenSSL.fixed_length_secure_compare(d, digest) }.any? && given.is_a?(String) && !given.empty?
        end

        # The classifier's Result for the request, a constraint that raised turned into a 503.
        def learned(method, path_info)
          @classifier.learn(method, path_info, &@constraint)
        rescue ConstraintFailure => e
          warn("constraint failed for #{method} #{path_info}: #{e.original.class}: #{e.original.message}")
          raise RequestError.new(503, "constraint_failed",
                                 "the route constraint raised #{e.original.class} for #{method} #{path_info}")
        rescue PathTooLongError => e
          raise RequestError.new(414, "path_too_long", e.message)
        rescue InvalidRequestError => e
          raise RequestError.new(400, "invalid_request", e.message)
        end

        def resolve(entity)
          Resolution.cell_for(@resolver, entity)
        rescue Resolution::Failed => e
          warn(e.log_message)
          raise RequestError.new(503, e.code, e.message)
        end

        def read_params(query)
          if query.bytesize > (@max_path_length * 3) + 1024
            raise RequestError.new(414, "path_too_long", "the query string is #{query.bytesize} bytes, too long for a path_info " \
                                                         "of at most #{@max_path_length} bytes")
          end

          params = parse_query(query)
          PARAMS.map { |name| param(params, name) }
        end

        def parse_query(query)
          params = Rack::Utils.parse_query(query, "&")
          nested = params.keys.find { |key| key.start_with?("method[", "path_info[") }
          if nested
            raise RequestError.new(400, "invalid_parameter",
                                   "#{nested} is not accepted: give #{nested[/\A[a-z_]+/]} once, as a plain parameter")
          end

          params
        # A bad %-escape raises ArgumentError (Rack's InvalidParameterError is one too), `a=1&a[]=2`
        # Rack's ParameterTypeError (a TypeError), too many or too deep parameters RangeErrors.
        rescue ArgumentError, RangeError, Rack::Utils::ParameterTypeError => e
          raise RequestError.new(400, "invalid_query", "the query string cannot be decoded: #{e.message}")
        end

        def param(params, name)
          value = params[name]
          raise RequestError.new(400, "duplicate_parameter", "#{name} is given #{value.size} times; give it once") if value.is_a?(Array)
          raise RequestError.new(400, "missing_parameter", "#{name} is missing or empty") if value.nil? || value.empty?
          raise RequestError.new(400, "invalid_parameter", "#{name} is not valid UTF-8") unless value.valid_encoding?

          name == "method" ? check_method(value) : check_path(value)
        end

        def check_method(value)
          return value if TOKEN.match?(value)

          raise RequestError.new(400, "invalid_parameter", "method #{value.inspect} is not an HTTP method token")
        end

        def check_path(value)
          if value.bytesize > @max_path_length
            raise RequestError.new(414, "path_too_long", "path_info is #{value.bytesize} bytes, over the limit of #{@max_path_length}")
          end
          raise RequestError.new(400, "invalid_parameter", "path_info #{value.inspect} does not start with /") unless value.start_with?("/")
          raise RequestError.new(400, "invalid_parameter", "path_info #{value.inspect} contains a control character") if CONTROL.match?(value)

          value
        end

        def guard(constraint)
          lambda do |route, params|
            constraint.call(route, params)
          rescue StandardError => e
            raise ConstraintFailure, e
          end
        end

        def warn(message)
          @logger&.warn("[#{self.class.name}] #{message}")
        end

        # Yields the payload Hash (nil when nobody subscribes to {EVENT}).
        def instrument(method, path_info, &)
          notifications = defined?(ActiveSupport::Notifications) && ActiveSupport::Notifications
          return yield(nil) unless notifications&.notifier&.listening?(EVENT)

          notifications.instrument(EVENT, { method: method, path_info: path_info }, &)
        end

        def error(status, code, message, extra = {})
          respond(status, { "error" => code, "message" => message }, extra)
        end

        # @param body [Hash, String] the answer, or its JSON already written
        def respond(status, body, extra = {})
          self.class.json_response(status, body.is_a?(String) ? body : JSON.generate(body), extra)
        end
      end
    end
  end
end
