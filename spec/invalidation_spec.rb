# frozen_string_literal: true

require_relative "spec_helper"
require "socket"

# Gitlab::Cells::Learn::Invalidation against a real redis-server (the routers' shared cache and
# purge channel) and against fake routers' internal listeners (the HTTP purge API).
RSpec.describe Gitlab::Cells::Learn::Invalidation do
  invalidation_error = Gitlab::Cells::Learn::InvalidationError

  describe "arguments" do
    it "needs exactly one of redis: and routers:, and a token for routers:" do
      expect { described_class.new }.to raise_error(invalidation_error, /exactly one/)
      expect { described_class.new(redis: Object.new, routers: ["http://127.0.0.1:1"], token: "t") }.to raise_error(invalidation_error, /exactly one/)
      expect { described_class.new(routers: ["http://127.0.0.1:1"]) }.to raise_error(invalidation_error, /token/)
      expect { described_class.new(routers: [], token: "t") }.to raise_error(invalidation_error, /empty/)
      expect { described_class.new(routers: ["ftp://x/"], token: "t") }.to raise_error(invalidation_error, /invalid router URL/)
      expect { described_class.new(routers: ["http://x:9190/some/path"], token: "t") }.to raise_error(invalidation_error, /invalid router URL/)
    end

    it "refuses prefixes and cells the routers would refuse, before sending anything" do
      invalidation = described_class.new(routers: ["http://127.0.0.1:1"], token: "t")
      ["", "/", "acme", "/a/../b", "/a//b", "/a?b", "/a b", nil].each do |bad|
        expect { invalidation.purge_prefix(bad) }.to raise_error(invalidation_error, /invalid prefix/)
      end
      expect { invalidation.purge_cell("cell us1") }.to raise_error(invalidation_error, /invalid cell name/)
    end
  end

  describe "through Redis" do
    before(:all) do
      skip "redis-server is not installed (script/bootstrap installs it)" unless RedisProcess.available?
      begin
        require "redis"
      rescue LoadError
        skip "the redis gem is not installed (Debian: ruby-redis; script/bootstrap installs it)"
      end
      @server = RedisProcess.new
    end

    after(:all) { @server&.stop }

    let(:redis) { Redis.new(url: @server.url) }

    before { redis.flushall }

    # Subscribes to the purge channel on a connection of its own; returns the messages seen.
    def listening(url)
      messages = Queue.new
      ready = Queue.new
      listener = Thread.new do
        Redis.new(url: url).subscribe_with_timeout(5, "cells-router:purge") do |on|
          on.subscribe { ready << true }
          on.message { |_channel, message| messages << message }
        end
      rescue Redis::TimeoutError
        nil
      end
      ready.pop
      yield
      sleep 0.01 until messages.size.positive? || !listener.alive?
      listener.kill
      Array.new(messages.size) { messages.pop }
    end

    it "deletes the entries at and below a prefix, keeps its neighbours and publishes the purge" do
      stored = JSON.generate("cell" => "cell_us1", "until_ms" => 9_999_999_999_999)
      %w[>/acme-corp =/acme-corp/app/-/issues >/acme-corp/app >/acme-corpx >/other].each { |k| redis.set("cells-router:route:#{k}", stored) }
      outcome = nil
      messages = listening(@server.url) { outcome = described_class.new(redis: redis).purge_prefix("/acme-corp/") }
      expect(outcome.deleted).to eq(3)
      expect(outcome.receivers).to eq(1)
      expect(messages).to eq([JSON.generate("prefix" => "/acme-corp")])
      expect(redis.keys("*").sort).to eq(["cells-router:route:>/acme-corpx", "cells-router:route:>/other"])
    end

    it "deletes a cell's entries by value, and takes glob characters in a prefix literally" do
      redis.set("cells-router:route:>/a", JSON.generate("cell" => "cell_a", "until_ms" => 1))
      redis.set("cells-router:route:>/b", JSON.generate("cell" => "cell_b", "until_ms" => 1))
      redis.set("cells-router:route:>/c", "not json")
      redis.set("cells-router:route:>/x*y", JSON.generate("cell" => "cell_a", "until_ms" => 1))
      redis.set("cells-router:route:>/xzy", JSON.generate("cell" => "cell_a", "until_ms" => 1))
      invalidation = described_class.new(redis: @server.url)
      expect(invalidation.purge_cell("cell_b").deleted).to eq(1)
      expect(invalidation.purge_prefix("/x*y").deleted).to eq(1)
      expect(redis.keys("*").sort).to eq(["cells-router:route:>/a", "cells-router:route:>/c", "cells-router:route:>/xzy"])
    end

    it "says which purge Redis refused" do
      down = described_class.new(redis: Redis.new(url: "redis://127.0.0.1:1", connect_timeout: 0.2, reconnect_attempts: 0))
      expect { down.purge_prefix("/acme-corp") }.to raise_error(invalidation_error, %r{redis refused the purge of \{"prefix":"/acme-corp"\}})
    end
  end

  describe "through the routers' purge API" do
    # A router's internal listener: records each request, answers with +status+.
    def fake_router(status)
      server = TCPServer.new("127.0.0.1", 0)
      seen = Queue.new
      Thread.new do
        Thread.current.report_on_exception = false # ends when the spec closes the server
        loop do
          client = server.accept
          head = []
          while (line = client.gets) && line != "\r\n"
            head << line.chomp
          end
          seen << head
          body = status == 200 ? '{"status":"purged"}' : '{"error":"unauthorized"}'
          client.write("HTTP/1.1 #{status} X\r\ncontent-type: application/json\r\ncontent-length: #{body.bytesize}\r\nconnection: close\r\n\r\n#{body}")
          client.close
        end
      end
      ["http://127.0.0.1:#{server.addr[1]}", seen, server]
    end

    it "sends DELETE /-/cells-router/cache with the token to every router" do
      (url1, seen1, s1) = fake_router(200)
      (url2, seen2, s2) = fake_router(200)
      outcome = described_class.new(routers: [url1, "#{url2}/"], token: "s3cret").purge_prefix("/acme-corp")
      expect(outcome.receivers).to eq(2)
      [seen1, seen2].each do |seen|
        head = seen.pop
        expect(head.first).to eq("DELETE /-/cells-router/cache?prefix=%2Facme-corp HTTP/1.1")
        expect(head).to include("Authorization: Bearer s3cret")
      end
      described_class.new(routers: [url1], token: "s3cret").purge_cell("cell_us1")
      expect(seen1.pop.first).to eq("DELETE /-/cells-router/cache?cell=cell_us1 HTTP/1.1")
      [s1, s2].each(&:close)
    end

    it "tries every router and names the ones that failed, never the token" do
      (good, _, s1) = fake_router(200)
      (bad, _, s2) = fake_router(401)
      closed = TCPServer.new("127.0.0.1", 0)
      dead = "http://127.0.0.1:#{closed.addr[1]}"
      closed.close
      invalidation = described_class.new(routers: [good, bad, dead], token: "s3cret")
      error = nil
      expect { invalidation.purge_prefix("/acme-corp") }.to raise_error(invalidation_error) { |e| error = e }
      expect(error.message).to include("failed on 2 of 3 routers", "#{bad}: 401", "#{dead}: 0")
      expect(error.message).not_to include("s3cret")
      [s1, s2].each(&:close)
    end
  end
end
