# frozen_string_literal: true

require "spec_helper"
require "rbconfig"
require "socket"
require "tmpdir"
require_relative "../demo/flows"
require_relative "../support/loopback"

# script/demo's flow replay, run for real so that the demo cannot rot: four Puma cells and two
# cells-router processes on free loopback ports, every flow of the seed checked hop by hop.
RSpec.describe "the demo topology (demo/topology.rb)", :demo do
  router = File.join(REPO_ROOT, "target/release/cells-router")
  topology = File.join(REPO_ROOT, "demo/topology.rb")

  # Runs the topology script in its own process group, bounded in time.
  def run_topology(*args, timeout: 180)
    reader, writer = IO.pipe
    pid = Process.spawn(RbConfig.ruby, *args, chdir: REPO_ROOT, pgroup: true, in: File::NULL, out: writer, err: writer)
    writer.close
    output = +""
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    until reader.eof?
      raise "the demo ran over #{timeout}s:\n#{output}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      output << reader.readpartial(65_536) if reader.wait_readable(1)
    end
    _, status = Process.wait2(pid)
    [output, status]
  ensure
    reader&.close
    if pid
      begin
        Process.kill("KILL", -pid)
        Process.wait(pid)
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      end
    end
  end

  def port_open?(port)
    Loopback.port_open?(port)
  end

  def alive?(pid)
    Process.kill(0, pid)
    true
  rescue Errno::ESRCH
    false
  end

  it "replays every flow of the seed as the seed says, draws each one, and leaves no process behind" do
    raise "#{router} is missing: build it first (`cargo build --release -p cells-router`; script/test and script/demo do)" unless File.executable?(router)

    Dir.mktmpdir("cells-demo") do |out|
      output, status = run_topology(topology, "--ports", "auto", "--out", out)
      expect(status.exitstatus).to eq(0), "demo/topology.rb exited #{status.exitstatus}:\n#{output}"

      Demo::Flows::ALL.each { |flow| expect(output).to match(/\] #{Regexp.escape(flow.id)}\s+ok /) }
      flows_md = File.read(File.join(out, "flows.md"))
      expect(flows_md.scan(/^```mermaid\nsequenceDiagram\n/).size).to eq(Demo::Flows::ALL.size)
      # One learn request, or two when the first cell asked was the owner naming itself: the router
      # then has a second cell confirm the claim (the flow's own hop check folds that into one hop).
      expect(flows_md).to match(/^\| eu-user-project \| router_eu \| 1 \| 0 \| [12] \| 0 \|/)
      expect(flows_md).to include("| same-prefix | router_eu | 2 | 2 | 0 | 0 |")
      expect(flows_md).not_to include("DIFFERS")

      children = JSON.parse(File.read(File.join(out, "topology.json"))).fetch("children")
      expect(children.map { |c| c["name"] }).to contain_exactly("cell_us0", "cell_us1", "cell_eu0", "cell_eu1", "router_us", "router_eu", "redis")
      children.each do |c|
        expect(port_open?(c["port"])).to be(false), "#{c["name"]} still listens on #{c["port"]}"
        expect(alive?(c["pid"])).to be(false), "#{c["name"]} (pid #{c["pid"]}) is still running"
      end
    end
  end

  it "refuses to start without the router binary, naming it, and starts nothing" do
    Dir.mktmpdir("cells-demo") do |out|
      output, status = run_topology(topology, "--ports", "auto", "--out", out, "--router", "/nonexistent/cells-router", timeout: 60)
      expect(status.exitstatus).to eq(2)
      expect(output).to include("/nonexistent/cells-router is missing")
      expect(File.exist?(File.join(out, "topology.json"))).to be(false)
    end
  end

  describe "the flow checks" do
    before(:all) { require_relative "../demo/topology" }

    let(:topology) { Demo::Topology.new(out: Dir.tmpdir, io: StringIO.new) }
    let(:flow) { Demo::Flows::ALL.first }
    let(:router) { Demo::Topology::Child.new(name: "router_eu", kind: :router, port: 9181) }
    let(:learn_line) do
      { "cell" => "cell_us1", "path" => "/api/v4/cells/learn", "query" => "method=GET&path_info=%2Fmy-company%2Fmy-project", "status" => 200,
        "learn" => '{"path":"/my-company/my-project","cell":"cell_eu0","source":"routable"}' }
    end
    let(:page_line) { { "cell" => "cell_eu0", "path" => "/my-company/my-project", "status" => 200 } }
    let(:observed) do
      { status: 200, served_by: "cell_eu0", location: nil, leaked: [], lines: [learn_line, page_line], expect: flow.steps.first[:expect],
        trace: { "router" => "router_eu", "cache" => "miss", "learned_from" => "cell_us1", "cell" => "cell_eu0" } }
    end

    def check(observed)
      topology.send(:check, flow, router, observed)
    end

    it "accept what the seed says" do
      expect(check(observed)).to eq([])
    end

    it "flag a request served by another cell, a cache hit where a miss was due, and a learn answer naming another cell" do
      wrong = observed.merge(served_by: "cell_eu1", trace: observed[:trace].merge("cache" => "hit", "cell" => "cell_eu1"),
                             lines: [learn_line.merge("learn" => '{"path":"/my-company","cell":"cell_us0","source":"routable"}'),
                                     page_line.merge("cell" => "cell_eu1")])
      expect(check(wrong)).to eq(["served by \"cell_eu1\", expected cell_eu0", "cache \"hit\", expected miss",
                                  "the learn answer named \"cell_us0\", expected cell_eu0"])
      expect(check(observed.merge(lines: [learn_line.merge("learn" => '{"cell":"cell_us0"}'), page_line])))
        .to eq(["the learn answer named \"cell_us0\", expected cell_eu0"])
    end

    it "flag a learn request where the cache should have answered" do
      hit = Demo::Flows::ALL.find { |f| f.id == "same-prefix" }.steps.first[:expect]
      expect(check(observed.merge(expect: hit, trace: observed[:trace].merge("cache" => "hit"))))
        .to include("1 learn request(s) reached the cells, expected 0")
      expect(check(observed.merge(expect: hit, lines: [page_line], trace: observed[:trace].merge("cache" => "hit").except("learned_from"))))
        .to eq([])
    end

    it "flag a trace that disagrees with the cells' own records, and internal headers reaching the client" do
      expect(check(observed.merge(trace: observed[:trace].merge("learned_from" => "cell_us0"))))
        .to eq(["the trace says learned_from=\"cell_us0\", but cell_us1 answered the learn request"])
      expect(check(observed.merge(leaked: ["X-Gitlab-Cell-Cache"]))).to eq(["the client saw internal header(s) X-Gitlab-Cell-Cache"])
      expect(check(observed.merge(trace: {}))).to include("no X-Cells-Router-Trace header")
    end

    it "flag a redirect to the wrong place or to a host other than the router" do
      step = Demo::Flows::ALL.find { |f| f.id == "eu-user-not-signed-in" }.steps.first
      redirect = { status: 302, served_by: "cell_eu0", leaked: [], lines: [page_line.merge("status" => 302)], expect: step[:expect],
                   trace: { "router" => "router_eu", "cache" => "hit", "cell" => "cell_eu0" } }
      expect(check(redirect.merge(location: "http://127.0.0.1:9181/users/sign_in"))).to eq([])
      expect(check(redirect.merge(location: "http://127.0.0.1:9103/users/sign_in")))
        .to eq(["redirect to host 127.0.0.1:9103, expected the router 127.0.0.1:9181"])
      expect(check(redirect.merge(location: "http://127.0.0.1:9181/dashboard"))).to eq(["redirect to /dashboard, expected /users/sign_in"])
    end
  end
end
