# frozen_string_literal: true

module Demo
  class Topology
    # What the routers are given: their TOML configuration and the secrets it points to.
    module RouterConfig
      private

      # The shared secret of the routers' learn requests: a fresh one per run, in a file only this
      # user can read, given to the cells (LEARN_TOKEN_FILE) and the routers (learn_token_file).
      def learn_token_file
        @learn_token_file ||= secret_file("learn_token")
      end

      # A fresh random secret in a file of the run directory that only this user can read.
      def secret_file(name)
        File.join(out, name).tap do |path|
          File.open(path, File::WRONLY | File::CREAT | File::TRUNC, 0o600) { |f| f.puts(SecureRandom.hex(32)) }
        end
      end

      # The token the routers' purge API wants (the demo purges through Redis; the API is there too).
      def purge_token_file
        @purge_token_file ||= secret_file("purge_token")
      end

      def router_toml(name, port, cells, internal_port)
        settings = { "name" => name, "listen" => "127.0.0.1:#{port}", "internal_listen" => "127.0.0.1:#{internal_port}",
                     "default_cell" => default_cell, "learn_path" => Gitlab::Cells::Learn::Endpoint::MOUNT_PATH,
                     "learn_token_file" => learn_token_file, "purge_token_file" => purge_token_file, "trace_header" => true }
        sections = {
          "cache" => { "ttl" => "60s", "capacity" => 100_000, "stale_grace" => "300s" },
          "cache.shared" => { "url" => redis_url, "budget" => "50ms" },
          "timeouts" => { "connect" => "1s", "learn" => "2s", "request" => "60s", "shutdown" => "5s" },
          "not_found_delay" => { "max" => "0ms" },
          "session_cookie" => { "name" => "_gitlab_session", "pattern" => "^cell-(?<cell>[a-z0-9_]+)-" }
        }
        "# Written by demo/topology.rb\n#{Processes.router_toml(settings, sections, cells.map { |c| [c.name, "http://127.0.0.1:#{c.port}"] })}"
      end
    end
  end
end
