# frozen_string_literal: true

require "fileutils"
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

  # The two git cells both real-client specs run behind a router: alpha's namespace on cell_a,
  # bravo's on cell_b, started and ready, then a router before them (a copy of the router binary
  # in `dir`, requests allowed 30 s: clones and uploads are large).
  #
  # @param repos [Hash{String=>String}] each cell's repository root (GIT_REPOS)
  # @return [Array(Array<GitCell>, Router)] the cells (cell_a, cell_b) and the router
  def self.git_cells_behind_router(dir:, name:, default_cell:, repos:)
    router_bin = File.join(dir, "cells-router")
    FileUtils.cp(ROUTER_BIN, router_bin, preserve: true)
    env = { "GIT_CELLS" => "cell_a,cell_b", "GIT_DEFAULT" => default_cell, "GIT_OWNERS" => "alpha=cell_a,bravo=cell_b",
            "GIT_PROJECTS" => "alpha/tools,bravo/project" }
    cells = %w[cell_a cell_b].map do |cell|
      GitCell.new(name: cell, port: free_port, log: File.join(dir, "#{cell}.log"), env: env.merge("GIT_REPOS" => repos.fetch(cell)))
    end
    cells.each(&:start)
    cells.each(&:wait_until_ready)
    router = Router.new(name: name, port: free_port, log: File.join(dir, "router.log"), cells: cells,
                        default_cell: default_cell, dir: dir, bin: router_bin, timeouts: { "request" => "30s" })
    router.start
    router.wait_until_ready
    [cells, router]
  end
end
