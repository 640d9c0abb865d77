# frozen_string_literal: true

require "json"
require "net/http"
require "uri"

module Gitlab
  module Cells
    module Learn
      # A purge could not be delivered: Redis refused it, or a router did not answer 200.
      class InvalidationError < Error; end

      # Tells every cells-router to forget what it cached for a path prefix (or for a cell), so
      # that the next request is learned again rather than sent to the old cell and answered 421.
      #
      # The Rails application calls it when an organization or top-level namespace moves, after
      # its routes row changes (so that the cells' next learn answer already names the new cell):
      #
      #   invalidation = Gitlab::Cells::Learn::Invalidation.new(redis: Redis.new(url: ENV["CELLS_ROUTER_REDIS_URL"]))
      #   invalidation.purge_prefix("/acme-corp")
      #
      # Two ways to reach the routers:
      # - +redis:+ the routers' shared cache (`[cache.shared]`): the entries under the prefix are
      #   deleted from Redis, then the purge is published on the routers' channel, which every
      #   router subscribed to it applies to its own memory. One call, however many routers.
      # - +routers:+ the routers' internal listeners (`http://host:9190`): each gets
      #   `DELETE /-/cells-router/cache?prefix=...` with the purge token (`purge_token_file`).
      #
      # The Redis key layout and the message are the router's (router/src/shared.rs):
      # `{namespace}route:={path}` / `{namespace}route:>{path}`, and
      # `{"prefix":"/acme-corp"}` or `{"cell":"cell_us1"}` on `{namespace}purge`.
      class Invalidation
        # What one purge did.
        # deleted: Redis entries deleted (nil without Redis); receivers: routers subscribed to the
        # channel when it was published (Redis), or the routers that answered 200 (HTTP).
        Outcome = Struct.new(:target, :deleted, :receivers, keyword_init: true)

        DEFAULT_NAMESPACE = "cells-router:"
        PURGE_PATH = "/-/cells-router/cache"
        SCAN_BATCH = 1000

        # @param redis [#publish, #scan_each, #del, #mget, nil] a Redis client (the `redis` gem,
        #   Debian's ruby-redis), or a URL String to build one from
        # @param routers [Array<String>, nil] the routers' internal listener URLs
        # @param token [String, nil] the routers' purge token (required with +routers:+)
        # @param namespace [String] the routers' `cache.shared.namespace`
        # @param timeout [Numeric] seconds per router (HTTP)
        def initialize(redis: nil, routers: nil, token: nil, namespace: DEFAULT_NAMESPACE, timeout: 2)
          raise InvalidationError, "give exactly one of redis: and routers:" if redis.nil? == routers.nil?

          @redis = redis.is_a?(String) ? self.class.redis_client(redis) : redis
          @routers = routers&.map { |u| router_uri(u) }
          raise InvalidationError, "routers: needs the purge token (token:)" if @routers && (token.nil? || token.empty?)
          raise InvalidationError, "routers: is empty" if @routers&.empty?

          @token = token
          @namespace = namespace
          @timeout = timeout
        end

        # A Redis client for +url+, from the `redis` gem.
        def self.redis_client(url)
          require "redis"
          Redis.new(url: url)
        rescue LoadError
          raise InvalidationError, "the redis gem is not installed (Debian: ruby-redis); pass routers: instead"
        end

        # Purges every entry at or below +prefix+ (`/acme-corp` covers `/acme-corp/x`, never `/acme-corpx`).
        # @return [Outcome]
        def purge_prefix(prefix)
          prefix = checked_prefix(prefix)
          deliver({ "prefix" => prefix }) { |key_path| at_or_below?(key_path, prefix) }
        end

        # Purges every entry that routes to +cell+.
        # @return [Outcome]
        def purge_cell(cell)
          unless cell.is_a?(String) && cell.match?(/\A[A-Za-z0-9_.-]{1,64}\z/)
            raise InvalidationError, "invalid cell name #{cell.inspect} (expected [A-Za-z0-9_.-]{1,64})"
          end

          deliver({ "cell" => cell }) { nil }
        end

        private

        def deliver(target, &)
          @redis ? through_redis(target, &) : through_routers(target)
        end

        def through_redis(target, &)
          deleted = delete_keys(target, &)
          receivers = @redis.publish("#{@namespace}purge", JSON.generate(target))
          Outcome.new(target: target, deleted: deleted, receivers: receivers)
        rescue StandardError => e
          raise e if e.is_a?(InvalidationError)

          raise InvalidationError, "redis refused the purge of #{target.to_json}: #{e.class}: #{e.message}"
        end

        # Deletes the route keys the purge covers: by path for a prefix, by value for a cell.
        def delete_keys(target)
          route = "#{@namespace}route:"
          pattern = target["prefix"] ? "#{glob(route)}[=>]#{glob(target["prefix"])}*" : "#{glob(route)}*"
          deleted = 0
          @redis.scan_each(match: pattern, count: SCAN_BATCH).each_slice(SCAN_BATCH) do |keys|
            doomed = target["prefix"] ? keys.select { |k| yield(k[route.length + 1..]) } : keys_of_cell(keys, target["cell"])
            deleted += @redis.del(*doomed) unless doomed.empty?
          end
          deleted
        end

        def keys_of_cell(keys, cell)
          keys.zip(@redis.mget(*keys)).select { |_, value| stored_cell(value) == cell }.map(&:first)
        end

        def stored_cell(value)
          value && JSON.parse(value)["cell"]
        rescue JSON::ParserError
          nil
        end

        def through_routers(target)
          query = URI.encode_www_form(target)
          failures = []
          ok = @routers.count do |base|
            status, body = delete(base, query)
            failures << "#{base}: #{status} #{body[0, 200]}" unless status == 200
            status == 200
          end
          raise InvalidationError, "purge of #{target.to_json} failed on #{failures.size} of #{@routers.size} routers: #{failures.join("; ")}" if failures.any?

          Outcome.new(target: target, deleted: nil, receivers: ok)
        end

        def delete(base, query)
          uri = URI.join(base, "#{PURGE_PATH}?#{query}")
          response = Net::HTTP.start(uri.host, uri.port, open_timeout: @timeout, read_timeout: @timeout, write_timeout: @timeout) do |http|
            request = Net::HTTP::Delete.new(uri)
            request["Authorization"] = "Bearer #{@token}"
            http.request(request)
          end
          [response.code.to_i, response.body.to_s]
        rescue IOError, SystemCallError, Timeout::Error, SocketError => e
          [0, "#{e.class}: #{e.message}"]
        end

        def router_uri(url)
          uri = URI.parse(url.to_s)
          unless uri.is_a?(URI::HTTP) && uri.host && uri.path.to_s.delete("/").empty?
            raise InvalidationError,
                  "invalid router URL #{url.inspect} (expected http://host:port)"
          end

          "#{uri.scheme}://#{uri.host}:#{uri.port}"
        rescue URI::InvalidURIError
          raise InvalidationError, "invalid router URL #{url.inspect} (expected http://host:port)"
        end

        def checked_prefix(prefix)
          path = prefix.to_s.sub(%r{/+\z}, "")
          valid = path.start_with?("/") && path.length > 1 && path[1..].split("/", -1).none? { |s| s.empty? || s == "." || s == ".." } &&
                  !path.match?(/[?#\s[:cntrl:]]/)
          raise InvalidationError, "invalid prefix #{prefix.inspect}: an absolute path below / (e.g. /acme-corp)" unless valid

          path
        end

        def at_or_below?(path, prefix)
          path == prefix || path.start_with?("#{prefix}/")
        end

        # SCAN MATCH's glob characters, escaped.
        def glob(text)
          text.gsub(/[*?\[\]\\]/) { |c| "\\#{c}" }
        end
      end
    end
  end
end
