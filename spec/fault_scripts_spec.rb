# frozen_string_literal: true

require "fileutils"
require "json"
require "open3"
require "rbconfig"
require "tmpdir"

# script/fault-load --quick and script/soak --seconds 20 end to end (Puma counting cells,
# cells-router and wrk on loopback; about a minute together), and their verdicts: the figures they
# write, and that tampered records or samples turn a verdict into a failure (--analyze).
RSpec.describe "script/fault-load and script/soak", :slow do
  # A capacity a 20 s run fills even on a loaded CI machine (~750 new paths/s seen at worst).
  CAPACITY = 5_000

  def run_script(name, *args)
    Open3.capture3(RbConfig.ruby, File.join(REPO_ROOT, "script", name), *args, chdir: REPO_ROOT)
  end

  def gone?(pid)
    Process.kill(0, pid)
    false
  rescue Errno::ESRCH
    true
  end

  before(:context) do
    skip "wrk is not installed" unless system("command -v wrk >/dev/null 2>&1")
    @tmp = Dir.mktmpdir("fault-scripts")
  end

  after(:context) { FileUtils.remove_entry(@tmp) if @tmp }

  describe "script/fault-load --quick" do
    before(:context) do
      path = File.join(@tmp, "fault-load.json")
      run = lambda do |attempt|
        @work = File.join(@tmp, "fault-load-#{attempt}")
        @stdout, @stderr, @status = run_script("fault-load", "--quick", "--keep", "--dir", @work, "--json", @tmp)
        @figures = File.exist?(path) ? JSON.parse(File.read(path)) : {}
      end
      run.call(1)
      # On a loaded CI machine wrk itself occasionally reports one socket read error (and so one
      # more unanswered request than it has connections). Only that is retried, once, and said;
      # lost, duplicated or misrouted requests never are.
      failed = Array(@figures["checks"]).reject { |c| c["ok"] }.map { |c| c["name"].to_s }
      if !failed.empty? && failed.all? { |n| n.match?(/socket errors|unanswered/) }
        warn "fault-load --quick: retrying once after wrk-side socket errors only: #{failed.join("; ")}"
        run.call(2)
      end
    end

    it "passes: nothing lost, duplicated or misrouted" do
      expect(@status.exitstatus).to eq(0), "stdout:\n#{@stdout}\nstderr:\n#{@stderr}"
      expect(@figures).to include("verdict" => "pass", "mode" => "quick", "lost" => 0, "duplicated" => 0, "misrouted" => 0,
                                  "phantom" => 0, "altered" => 0, "non2xx_refused" => 0)
      expect(@figures["checks"]).to all(include("ok" => true))
      expect(@stdout).to include("verdict: PASS")
    end

    it "accounts for every request sent" do
      f = @figures
      expect(f["sent"]).to be > 1000
      expect(f["received"] + f["unanswered"]).to eq(f["sent"])
      expect(f["wrk_dry_run_requests"]).to eq(1) # wrk's script check: generated, never sent
      expect(f["unanswered"]).to be_between(0, f.dig("wrk", "connections"))
      expect(f["by_status"].keys - %w[200 502 503]).to eq([])
      expect(f["accepted"]).to eq(f["by_status"]["200"])
      expect(f["recorded_ids"]).to be >= f["accepted"]
      expect(f["recorded_by_cell"].values.sum).to eq(f["recorded"])
    end

    it "saw each fault take effect, and every cell serve in every phase except the killed one while down" do
      faults = @figures["faults"]
      # 502 for the requests that found the cell gone, then 503 from its open breaker.
      expect(faults["kill"]["errors"].keys).to all(match(/\A50[23] /))
      expect(faults["kill"]["errors"].values.sum).to be > 0
      expect(faults["slow"]["slept"]).to be > 0
      expect(faults["garbage"]["answers"]).to be > 0
      expect(faults["garbage"]["router_learn_failures"]).to be > 0
      @figures["phases"].each do |phase|
        phase["ok_by_cell"].each do |cell, n|
          expect(n).to be > 0, "#{phase["phase"]}: #{cell} served nothing" unless phase["phase"] == "cell_1 down" && cell == "cell_1"
        end
      end
    end

    it "made no learn storm during the outage, and served the restarted cell within two probe intervals (breaker)" do
      o = @figures["outage"]
      expect(o["distinct_prefixes"]).to be > 0
      expect(o["learn_requests"]).to be <= o["distinct_prefixes"] + o["learn_requests_before"], o.inspect
      # Two probe intervals of 250 ms (see benches/faults/fault_load.rb).
      expect(o["first_served_after_ready_ms"]).to be <= 500, o.inspect
      expect(@figures["router_logged_client_closed"]).to be <= @figures.dig("wrk", "connections")
    end

    it "stopped every process it started" do
      pids = @figures["cells"].values.map { |c| c["pid"] }
      expect(pids.size).to eq(3)
      expect(pids).to all(satisfy { |pid| gone?(pid) })
      expect(Dir.children(@work)).to include("run.json", "ids-cell_0.log", "sent-1.log", "resp-1.log")
    end

    it "fails on a lost, a duplicated and a misrouted request (records tampered, --analyze)" do
      tampered = File.join(@tmp, "fault-load-tampered")
      FileUtils.cp_r(@work, tampered)
      ids = File.join(tampered, "ids-cell_0.log")
      first, *rest = File.readlines(ids)
      File.write(ids, rest.join) # its 2xx is now recorded by no cell: lost
      File.open(File.join(tampered, "ids-cell_2.log"), "a") { |f| f.write(rest.first) } # cell_0's namespace, twice
      out, err, status = run_script("fault-load", "--analyze", tampered, "--json", File.join(@tmp, "tampered.json"))
      figures = JSON.parse(File.read(File.join(@tmp, "tampered.json")))
      expect(status.exitstatus).to eq(1), "#{out}\n#{err}"
      expect(figures).to include("verdict" => "fail", "lost" => 1, "duplicated" => 1, "misrouted" => 1)
      expect(figures["examples"]["lost"]).to eq([first.split.first])
      expect(out).to include("[FAIL] no accepted request lost", "verdict: FAIL")
    end

    it "fails on a 502 outside the kill window (--analyze)" do
      tampered = File.join(@tmp, "fault-load-early-502")
      FileUtils.cp_r(@work, tampered)
      resp = File.join(tampered, "resp-1.log")
      lines = File.readlines(resp)
      ms, _status, _id, cell = lines.first.split
      lines[0] = "#{ms} 502 - - bad_gateway #{cell}\n"
      File.write(resp, lines.join)
      out, _err, status = run_script("fault-load", "--analyze", tampered)
      expect(status.exitstatus).to eq(1)
      expect(out).to include("[FAIL] non-2xx only 502/503 for cell_1 while it was down")
    end
  end

  describe "script/soak --seconds 20" do
    before(:context) do
      @work = File.join(@tmp, "soak")
      @json = File.join(@tmp, "soak-figures.json")
      @stdout, @stderr, @status = run_script("soak", "--seconds", "20", "--capacity", CAPACITY.to_s, "--keep", "--dir", @work, "--json", @json)
      @figures = File.exist?(@json) ? JSON.parse(File.read(@json)) : {}
    end

    it "passes: memory and descriptors flat, the cache within its capacity" do
      expect(@status.exitstatus).to eq(0), "stdout:\n#{@stdout}\nstderr:\n#{@stderr}"
      expect(@figures).to include("verdict" => "pass", "capacity" => CAPACITY)
      expect(@figures["checks"].map { |c| c["name"] }).to eq(["memory flat", "file descriptors flat", "cache within capacity",
                                                              "every request answered 2xx"])
      expect(@figures["checks"]).to all(include("ok" => true))
      expect(@figures["end"]["rss_kib"]).to be <= (@figures["start"]["rss_kib"] * 1.2) + (5 * 1024)
      expect(@stdout).to match(/RSS \(MiB\).*fds.*entries/)
    end

    it "sampled through the run, filled the cache to its capacity and no further" do
      samples = @figures["samples"]
      expect(samples.size).to be >= 10
      expect(samples.map { |s| s["entries"] }.max).to be <= CAPACITY
      expect(@figures["cache"]).to include("saturated" => true)
      expect(@figures["start"]["entries"]).to be >= CAPACITY * 9 / 10
      expect(@figures["wrk"]["unique"]).to be > CAPACITY
      expect(@figures["cache"]["hit_ratio"]).to be_between(0.5, 0.9)
      expect(@figures["wrk"]["statuses"].keys).to eq(["200"])
    end

    it "fails when the router's memory grows or the cache overflows (samples tampered, --analyze)" do
      run = JSON.parse(File.read(File.join(@work, "run.json")))
      last = run["samples"].select { |s| s["phase"] == "load" }.last
      last["rss_kib"] = (@figures["start"]["rss_kib"] * 2) + (10 * 1024)
      run["samples"].last["entries"] = 20_001
      File.write(File.join(@work, "run.json"), JSON.generate(run))
      out, _err, status = run_script("soak", "--analyze", @work)
      expect(status.exitstatus).to eq(1)
      expect(out).to include("[FAIL] memory flat", "[FAIL] cache within capacity", "[ok] file descriptors flat", "verdict: FAIL")
    end
  end

  it "refuses bad arguments with exit status 2" do
    _out, err, status = run_script("soak", "--seconds", "0")
    expect(status.exitstatus).to eq(2)
    expect(err).to include("script/soak: invalid argument: --seconds must be 5..86400")
    _out, err, status = run_script("fault-load", "--bogus")
    expect(status.exitstatus).to eq(2)
    expect(err).to include("script/fault-load: invalid option: --bogus")
  end
end
