# frozen_string_literal: true

module Demo
  class Topology
    # Process supervision: every child (redis, the cells, the routers) started in its own process
    # group and waited for until it answers, on the helper the fault scripts and the end-to-end
    # specs share (support/processes.rb).
    module Supervision
      private

      # The routers' shared cache: a redis-server of the demo's own, no persistence.
      def start_redis
        port = free_port
        dir = File.join(out, "redis")
        FileUtils.mkdir_p(dir)
        spawn_child("redis", :redis, port, File.join(out, "logs", "redis.log"), {},
                    ["redis-server", "--bind", "127.0.0.1", "--port", port.to_s, "--save", "", "--appendonly", "no", "--dir", dir])
      end

      def start_cells
        Seed.cells(db).each do |cell|
          name = cell["name"]
          port = port_for(CELL_PORTS.fetch(name) { raise StartError, "no port for #{name}" })
          log = File.join(out, "logs", "#{name}.log")
          env = {
            "CELL_NAME" => name, "DATABASE" => database_path, "DATABASE_URL" => ENV.fetch("DATABASE_URL", nil), "CLASSIFIER" => artifact_path,
            "REQUEST_LOG" => request_log(name), "RACK_ENV" => "production", "LEARN_TOKEN_FILE" => learn_token_file
          }
          cmd = Processes.puma(port: port, rackup: File.join(ROOT, "demo", "cell", "config.ru"), threads: "4:8", tag: "gitlab-cells-demo-#{name}")
          spawn_child(name, :cell, port, log, env, cmd)
        end
      end

      def start_routers
        cells = children.select { |c| c.kind == :cell }
        ROUTERS.each do |r|
          port = port_for(r["port"])
          # Health and metrics are served on the router's internal listener only.
          internal = free_port
          config = File.join(out, "#{r["name"]}.toml")
          File.write(config, router_toml(r["name"], port, cells, internal))
          spawn_child(r["name"], :router, port, File.join(out, "logs", "#{r["name"]}.log"), {},
                      [@router_bin, "--config", config, "--log-format", "json"])
          children.last.internal_port = internal
        end
      end

      def spawn_child(name, kind, port, log, env, cmd)
        children << Child.new(name: name, kind: kind, port: port, log: log).spawn(env, cmd)
        progress("started #{name.ljust(9)} pid #{children.last.pid} on 127.0.0.1:#{port}")
      end

      def wait_until_ready
        deadline = now + START_TIMEOUT
        children.each { |c| c.wait_until_ready(timeout: [deadline - now, 0].max, what: "answering (#{c.kind})") }
        progress("ready: #{children.map { |c| "#{c.name}:#{c.port}" }.join(" ")}")
      end

      def port_for(preferred)
        return free_port if @ports == :auto
        return preferred if port_free?(preferred)

        free_port.tap { |p| progress("port #{preferred} is taken, using #{p}") }
      end

      def port_free?(port)
        TCPServer.new("127.0.0.1", port).close
        true
      rescue SystemCallError
        false
      end

      def free_port
        Loopback.free_port
      end

      def relative(path)
        path.start_with?("#{ROOT}/") ? path.delete_prefix("#{ROOT}/") : path
      end

      def progress(message)
        @io.puts("demo: #{message}")
        @io.flush
      end

      def now
        Processes.now
      end
    end
  end
end
