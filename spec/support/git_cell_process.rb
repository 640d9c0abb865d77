# frozen_string_literal: true

require_relative "e2e_processes"

module E2E
  # A Puma cell running spec/support/git_cell/config.ru: `git http-backend` for Git over HTTP and
  # an upload sink, behind the gem's middleware and learn endpoint (spec/router_git_clients_spec.rb,
  # spec/router_curl_spec.rb).
  class GitCell < Child
    RU = File.join(__dir__, "git_cell", "config.ru")

    # @param env [Hash] GIT_* variables (see config.ru); GIT_CELL is set from name
    def initialize(name:, port:, log:, env:)
      super(name: name, port: port, log: log)
      @env = env.merge("GIT_CELL" => name)
    end

    def start
      spawn(@env.merge("RACK_ENV" => "production"),
            [RbConfig.ruby, Gem.bin_path("puma", "puma"), "--no-config", "-e", "production", "-b", "tcp://127.0.0.1:#{port}",
             "-t", "8:8", "--tag", "git-#{name}", RU])
    end

    def ready?
      http_ok?("/-/health", served_by: name)
    end

    def url
      "http://127.0.0.1:#{port}"
    end

    # @return [Array<Hash>] every request this cell recorded (learn requests aside)
    def records
      resp = E2E.request(port, "/-/git/records", timeout: 10)
      raise Error, "#{name}: /-/git/records answered #{resp.describe}" unless resp.status == 200

      resp.json.fetch("records")
    end
  end
end
