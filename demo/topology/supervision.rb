# frozen_string_literal: true

module Demo
  class Topology
    # Process supervision: every child (redis, the cells, the routers) in its own process group,
    # started, waited for until it answers, signalled and reaped.
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
          cmd = [RbConfig.ruby, Gem.bin_path("puma", "puma"), "--no-config", "-e", "production", "-b", "tcp://127.0.0.1:#{port}",
                 "-t", "4:8", "--tag", "gitlab-cells-demo-#{name}", File.join(ROOT, "demo", "cell", "config.ru")]
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
        pid = Process.spawn(env, *cmd, chdir: ROOT, pgroup: true, in: File::NULL, out: [log, "a"], err: [log, "a"])
        children << Child.new(name: name, kind: kind, pid: pid, port: port, log: log)
        progress("started #{name.ljust(9)} pid #{pid} on 127.0.0.1:#{port}")
      end

      def wait_until_ready
        deadline = now + START_TIMEOUT
        children.each do |c|
          path = c.kind == :cell ? "/-/health" : "/-/cells-router/health"
          loop do
            exited = Process.waitpid2(c.pid, Process::WNOHANG)
            if exited
              status = exited.last
              c.pid = nil
              raise StartError, "#{c.name} exited at start (#{status}); last lines of #{relative(c.log)}:\n#{tail(c.log)}"
            end
            break if ready?(c, path)
            raise StartError, "#{c.name} did not answer #{path} within #{START_TIMEOUT}s; #{relative(c.log)}:\n#{tail(c.log)}" if now > deadline

            sleep 0.05
          end
        end
        progress("ready: #{children.map { |c| "#{c.name}:#{c.port}" }.join(" ")}")
      end

      # Redis listens; a cell answers its health check; a router its internal listener's.
      def ready?(child, path)
        case child.kind
        when :redis then Loopback.port_open?(child.port)
        when :cell then healthy?(child.port, path)
        else healthy?(child.internal_port, path)
        end
      end

      def healthy?(port, path)
        Net::HTTP.start("127.0.0.1", port, open_timeout: 0.5, read_timeout: 2) { |h| h.get(path).code == "200" }
      rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout
        false
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

      def signal(child, sig)
        Process.kill(sig, -child.pid) if child.pid
      rescue Errno::ESRCH, Errno::EPERM
        nil
      end

      # Waits for a child until the deadline. @return [Boolean] whether it was reaped
      def reap(child, deadline)
        return true unless child.pid

        loop do
          return true if Process.waitpid(child.pid, Process::WNOHANG)
          return false if now > deadline

          sleep 0.05
        end
      rescue Errno::ECHILD
        true
      end

      def tail(path, lines = 15)
        return "(no log)" unless File.exist?(path)

        File.readlines(path).last(lines).map { |l| "  #{l}" }.join
      end

      def relative(path)
        path.start_with?("#{ROOT}/") ? path.delete_prefix("#{ROOT}/") : path
      end

      def progress(message)
        @io.puts("demo: #{message}")
        @io.flush
      end

      def now
        Process.clock_gettime(Process::CLOCK_MONOTONIC)
      end
    end
  end
end
