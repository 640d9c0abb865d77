# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"
require_relative "../benches/support/bench_tables"
require_relative "../benches/support/bench_sides"

# benches/classify_ips.rb (`rake bench`, script/bench-rails): the quick mode runs end to end (GitLab
# CE's web routes drawn into a RouteSet, the corpus table, a 300-template sample of GitLab's route
# snapshot, a small synthetic table) and
# writes positive figures for both sides of every table, throughput and per-request medians; the
# correctness gate that runs before any timing really compares picks (a tampered classifier makes
# the script exit 2 without timing); the snapshot's conversion, its exclusions and the per-request
# timing are checked in process.
RSpec.describe "benches/classify_ips.rb" do
  bench = File.join(REPO_ROOT, "benches", "classify_ips.rb")

  def run_bench(*args, env: {})
    Open3.capture3({ "BENCH_QUICK" => "1" }.merge(env), RbConfig.ruby, *args, chdir: REPO_ROOT)
  end

  context "in BENCH_QUICK mode with BENCH_JSON" do
    before(:context) do
      @dir = Dir.mktmpdir("bench-json")
      @json_path = File.join(@dir, "figures.json")
      @stdout, @stderr, @status = run_bench(bench, env: { "BENCH_JSON" => @json_path, "BENCH_RATIO_ROUNDS" => "2" })
      @figures = File.exist?(@json_path) ? JSON.parse(File.read(@json_path)) : nil
    end

    after(:context) { FileUtils.remove_entry(@dir) }

    it "exits 0 and writes the JSON" do
      expect(@status.exitstatus).to eq(0), "stdout:\n#{@stdout}\nstderr:\n#{@stderr}"
      expect(@figures).to be_a(Hash)
      expect(@figures["settings"]).to include("quick" => true, "time" => 0.2, "warmup" => 0.1, "templates" => 300,
                                              "median_min_ns" => 200_000)
    end

    it "benchmarks GitLab CE's table first, then the corpus table, a sample of GitLab's route snapshot and a small synthetic table" do
      expect(@figures["tables"].map { |t| t["name"] }).to eq(%w[gitlab-ce gitlabish gitlab-templates synthetic-100])
      corpus = @figures["tables"].find { |t| t["name"] == "gitlabish" }
      expect(corpus).to include("routes" => 201, "requests" => 722, "routed" => 624, "unrouted" => 98, "excluded" => [])
    end

    it "draws GitLab CE's whole table and times every recorded request" do
      ce = @figures["tables"].first
      expect(ce).to include("kind" => "gitlab-ce", "routes" => 1341, "requests" => 4033, "excluded" => [])
      expect(ce["description"]).to include("850 with request-time constraints, all holding")
      expect(ce["per_request"]["requests_timed"]).to eq(4033)
      expect(@stdout).to include("gitlab-templates: secondary figure")
    end

    it "requests every example and dottedExample of the 300 sampled templates" do
      templates = @figures["tables"].find { |t| t["name"] == "gitlab-templates" }
      sample = BenchTables.evenly_spaced(JSON.parse(File.read(File.join(CORPUS_DIR, "gitlab-route-templates.json"))), 300)
      expect(templates["routes"] + templates["excluded"].size).to eq(300)
      expect(templates["requests"]).to eq(sample.sum { |e| e["dottedExample"] ? 2 : 1 })
      expect(templates["routed"]).to be > templates["requests"] / 2
      expect(templates["description"]).to include("an evenly spaced sample of 300 of its 5066 templates")
    end

    it "has positive ops/s and ns/op for ours (learn, recognize) and Rails on every table, and their ratio" do
      @figures["tables"].each do |t|
        sides = { "ours learn" => t["ours"]["learn"], "ours recognize" => t["ours"]["recognize"],
                  "rails recognize" => t["rails"]["recognize"] }
        sides.each do |label, f|
          expect(f["ips"]).to be > 0, "#{t["name"]} #{label}: #{f.inspect}"
          expect(f["ns_per_op"]).to be > 0
          expect(f["iterations"]).to be > 0
        end
        expect(t["ratio"]["learn"]).to be_within(1e-9).of(t["ours"]["learn"]["ips"] / t["rails"]["recognize"]["ips"])
        expect(t["ratio"]["recognize"]).to be_within(1e-9).of(t["ours"]["recognize"]["ips"] / t["rails"]["recognize"]["ips"])
      end
    end

    it "has per-request medians and p90s for learn and Rails on every table, and their ratio" do
      @figures["tables"].each do |t|
        m = t["per_request"]
        expect(m).to include("requests_timed" => t["requests"], "min_timing_ns" => 200_000)
        expect(m["learn_median_ns"]).to be > 0, "#{t["name"]}: #{m.inspect}"
        expect(m["rails_median_ns"]).to be > 0
        expect(m["learn_p90_ns"]).to be >= m["learn_median_ns"]
        expect(m["rails_p90_ns"]).to be >= m["rails_median_ns"]
        expect(m["median_ratio"]).to be_within(1e-9).of(m["rails_median_ns"] / m["learn_median_ns"])
        expect(t.slice("learn_median_ns", "rails_median_ns", "median_ratio"))
          .to eq(m.slice("learn_median_ns", "rails_median_ns", "median_ratio"))
      end
    end

    it "times the Rust side of the same work in alternated rounds on the tables read from files, and divides" do
      pairs = { "learn_median" => %w[learn_median_ns ns_per_learn_median],
                "learn_cycling" => %w[learn_cycling_ns ns_per_learn_cycling_mean],
                "recognize_median" => %w[recognize_median_ns ns_per_recognize_params_median],
                "recognize_cycling" => %w[recognize_cycling_ns ns_per_recognize_params_cycling_mean] }
      %w[gitlab-ce gitlabish].each do |name|
        s = @figures["tables"].find { |t| t["name"] == name }["same_run_rust"]
        expect(s["command"]).to include("cells-learn bench --routes", "--rounds 20")
        expect(s["rounds"].map { |r| [r["round"], r["first"]] }).to eq([[1, "ruby"], [2, "rust"]])
        s["rounds"].each do |r|
          expect(r["rust"]).to include("rounds" => 20, "cycles" => 2, "requests" => name == "gitlab-ce" ? 4033 : 722)
          expect(r["ruby"]["cycles"]).to eq(2)
          pairs.each do |ratio, (ruby, rust)|
            expect(r["ruby"][ruby]).to be > 0
            expect(r["ratio"][ratio]).to be_within(1e-9).of(r["ruby"][ruby] / r["rust"][rust])
          end
        end
        # Two rounds: each figure the mean of the two rounds' ratios (the median of two).
        pairs.each_key do |ratio|
          expect(s["ratio"][ratio]).to be_within(1e-9).of(s["rounds"].sum { |r| r["ratio"][ratio] } / 2.0)
        end
        expect(s["met"]).to eq(s["ratio"]["learn_median"] <= 1.5 && s["ratio"]["learn_cycling"] <= 1.5)
        line = /#{name} Ruby ÷ Rust \(same run, 2 alternated rounds of `cells-learn bench --rounds 20`.*learn median [\d.]+×, cycling [\d.]+×/
        expect(@stdout).to match(line)
      end
      expect(@figures["tables"].find { |t| t["name"] == "gitlab-templates" }["same_run_rust"]).to be_nil
    end

    it "checked every benchmarked request against Rails before timing, all agreeing" do
      @figures["tables"].each do |t|
        expect(t["requests"]).to be > 0
        expect(t["agreement"]).to eq("checked" => t["requests"], "agreed" => t["requests"])
      end
    end

    it "prints the benchmark-ips report and the summary with each table's ratio" do
      expect(@stdout).to include("Calculating -------------------------------------", "Comparison:")
      @figures["tables"].each do |t|
        expect(@stdout).to match(/#{Regexp.escape(t['name'])}: learn is [\d,.]+× faster than Rails' router \(same run\)/)
        per_request = "#{Regexp.escape(t["name"])} per request: learn median [\\d,.]+ ns \\(p90 [\\d,.]+\\), " \
                      "Rails median [\\d,.]+ ns \\(p90 [\\d,.]+\\): median ratio [\\d,.]+× \\(#{t["requests"]} requests"
        expect(@stdout).to match(Regexp.new(per_request))
      end
    end
  end

  it "exits 2 before timing anything when a pick differs from Rails' (the gate can fail)" do
    vector = File.foreach(File.join(CORPUS_DIR, "gitlabish-requests.jsonl")).map { |l| JSON.parse(l) }
                 .find { |v| v["route_index"] && v["method"] == "GET" }
    Dir.mktmpdir("bench-tamper") do |dir|
      tamper = File.join(dir, "tamper.rb")
      File.write(tamper, <<~RUBY)
        $LOAD_PATH.unshift #{File.join(REPO_ROOT, "lib").inspect}
        require "gitlab/cells/learn"
        # Ours "forgets" the route of one recorded request.
        module TamperedRecognize
          def recognize(method, path_info, &block)
            path_info == #{vector["path"].inspect} ? nil : super
          end
        end
        Gitlab::Cells::Learn::Classifier.prepend(TamperedRecognize)
      RUBY
      stdout, stderr, status = run_bench("-r", tamper, bench, env: { "BENCH_SIZES" => "", "BENCH_TEMPLATES" => "0", "BENCH_CE" => "0" })
      expect(status.exitstatus).to eq(2), "stdout:\n#{stdout}\nstderr:\n#{stderr}"
      expect(stderr).to include("correctness check failed, nothing timed")
      expect(stderr).to include("gitlabish: ours and Rails disagree on")
      expect(stderr).to include("#{vector["method"]} #{vector["path"]}: Rails picks ##{vector["route_index"]}")
      expect(stdout).not_to include("Calculating")
    end
  end

  it "rejects bad settings with a usage error" do
    _out, err, status = run_bench(bench, env: { "BENCH_TIME" => "soon" })
    expect(status.exitstatus).to eq(64)
    expect(err).to include('BENCH_TIME must be a number of seconds > 0, not "soon"')
    _out, err, status = run_bench(bench, "--frobnicate")
    expect(status.exitstatus).to eq(64)
    expect(err).to include('unknown argument "--frobnicate"')
    _out, err, status = run_bench(bench, env: { "BENCH_TEMPLATES" => "some" })
    expect(status.exitstatus).to eq(64)
    expect(err).to include('BENCH_TEMPLATES must be all, 0 or a number of templates, not "some"')
    _out, err, status = run_bench(bench, env: { "BENCH_RUST_ROUNDS" => "5" })
    expect(status.exitstatus).to eq(64)
    expect(err).to include('BENCH_RUST_ROUNDS must be a number of rounds >= 10, not "5"')
    _out, err, status = run_bench(bench, env: { "BENCH_RATIO_ROUNDS" => "0" })
    expect(status.exitstatus).to eq(64)
    expect(err).to include('BENCH_RATIO_ROUNDS must be a number of rounds >= 1, not "0"')
    _out, err, status = run_bench(bench, env: { "BENCH_RUST" => "yes" })
    expect(status.exitstatus).to eq(64)
    expect(err).to include('BENCH_RUST must be 1 or 0, not "yes"')
  end

  it "says in one line how to build the CLI when BENCH_CELLS_LEARN names none" do
    missing = File.join(Dir.tmpdir, "no-such-cells-learn-#{Process.pid}")
    out, err, status = run_bench(bench, env: { "BENCH_CELLS_LEARN" => missing })
    expect(status.exitstatus).to eq(1)
    expect(err.lines).to eq(["classify_ips: #{missing} does not exist: build it with " \
                             "`cargo build --release --locked -p cells-learn-cli` (or set BENCH_CELLS_LEARN, or BENCH_RUST=0)\n"])
    expect(out).not_to include("Calculating")
  end

  describe "GitLab's route snapshot as a table, in process" do
    def snapshot_table(entries, limit: nil)
      Dir.mktmpdir("bench-templates") do |dir|
        File.write(File.join(dir, BenchTables::TEMPLATES_FILE), JSON.generate(entries))
        BenchTables.templates(limit: limit, dir: dir)
      end
    end

    let(:entries) do
      [
        { "template" => "/-/archive/*id.:format", "example" => "/-/archive/foo/bar.zip", "acceptsFormat" => true },
        { "template" => "/api/:version/groups/:id/(-/)epics", "example" => "/api/v4/groups/foo/-/epics",
          "acceptsFormat" => true },
        { "template" => "/api/:version/projects/:project_id/packages/nuget/v2/Packages\\(\\)",
          "example" => "/api/v4/projects/foo/packages/nuget/v2/Packages()" },
        { "template" => "/groups/*group_id/-/epics", "example" => "/groups/foo/bar/-/epics", "acceptsFormat" => true,
          "dottedExample" => "/groups/john.doe/bar/-/epics" },
        { "template" => "/help", "example" => "/help" }
      ]
    end

    it "converts each template to an any-verb row, (.:format) added where accepted, and requests both examples" do
      table = snapshot_table(entries)
      expect(table.rows.map { |r| r.values_at("index", "verb", "path", "requirements") }).to eq(
        [[0, "", "/-/archive/*id.:format", {}], [1, "", "/groups/*group_id/-/epics(.:format)", {}], [2, "", "/help", {}]]
      )
      expect(table.requests).to contain_exactly(
        ["GET", "/-/archive/foo/bar.zip"], ["GET", "/groups/foo/bar/-/epics"], ["GET", "/groups/john.doe/bar/-/epics"],
        ["GET", "/help"]
      )
      rails = BenchSides::Rails.new(table.rows)
      expect(BenchSides.disagreements(table.requests, rails, BenchSides::Ours.new(table.rows))).to eq([])
      expect(rails.prepare(table.requests).map { |r| rails.pick(r).first }).to all(be_an(Integer))
    end

    it "excludes, with the reason, the templates Rails' mapper does not draw as written" do
      table = snapshot_table(entries)
      expect(table.excluded.map { |row, reason| [row["path"], reason] }).to eq(
        [["/api/:version/groups/:id/(-/)epics(.:format)",
          "Rails' mapper rewrites the spec to \"/api/:version/groups/:id(/-/)epics(.:format)\""],
         ["/api/:version/projects/:project_id/packages/nuget/v2/Packages\\(\\)",
          "Rails' mapper rewrites the spec to \"/api/:version/projects/:project_id/packages/nuget/v2/Packages%5C(%5C)\""]]
      )
      expect(table.description).to include("5 templates", "2 excluded", "4 requests")
    end

    it "samples evenly, the first template included, and rejects malformed snapshots" do
      expect(BenchTables.evenly_spaced((0...10).to_a, 3)).to eq([0, 3, 6])
      expect(snapshot_table(entries, limit: 2).rows.map { |r| r["path"] }).to eq(["/-/archive/*id.:format"])
      expect { snapshot_table([{ "template" => "/x" }]) }
        .to raise_error(ArgumentError, /entry 0 needs string "template" and "example"/)
      expect { snapshot_table([]) }.to raise_error(ArgumentError, /not a non-empty JSON array/)
    end
  end

  describe "per-request timing" do
    it "grows K until one timing lasts the minimum and reports ns per call" do
      ks = []
      ns = BenchSides::PerRequest.adaptive(10_000) do |k|
        ks << k
        k * 7
      end
      expect(ns).to eq(7.0)
      expect(ks.first).to eq(1)
      expect(ks.last * 7).to be >= 10_000
      expect(ks[0..-2].map { |k| k * 7 }).to all(be < 10_000)
    end

    it "takes nearest-rank quantiles" do
      values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]
      expect(BenchSides::PerRequest.quantile(values, 0.5)).to eq(5)
      expect(BenchSides::PerRequest.quantile(values, 0.9)).to eq(9)
      expect(BenchSides::PerRequest.quantile([42], 0.9)).to eq(42)
    end

    it "times each request alone: a slower request gets a larger figure" do
      table = BenchTables.corpus("gitlabish")
      ours = BenchSides::Ours.new(table.rows)
      slow = Object.new
      # No sleep(0) on the fast side: yielding to the scheduler takes milliseconds on a loaded machine.
      def slow.learn(_method, path)
        sleep(0.005) if path == "/slow"
      end
      fast_ns, slow_ns = BenchSides::PerRequest.learn_ns(slow, [%w[GET /fast], %w[GET /slow]], 1_000_000)
      expect(slow_ns).to be > 4_000_000
      expect(fast_ns).to be < slow_ns / 2
      real = BenchSides::PerRequest.learn_ns(ours.classifier, table.requests.first(5), 50_000)
      expect(real).to all(be > 0)
    end
  end

  describe "the synthetic table and the gate, in process" do
    before(:context) do
      corpus = BenchTables.corpus("gitlabish")
      @table = BenchTables.synthetic(20, BenchTables.project_requirements(corpus.rows))
      @rails = BenchSides::Rails.new(@table.rows)
    end

    it "carries the corpus' project_id requirement and hits only the last routes or none" do
      expect(@table.rows.last["path"]).to eq("/*namespace_id/:project_id/-/feature_19(.:format)")
      expect(@table.rows.last.dig("requirements", "project_id", "source")).to include("(?<!\\.git|\\.atom)")
      picks = @rails.prepare(@table.requests).map { |r| @rails.pick(r)&.first }
      expect(picks.compact).to all(be >= 12)
      expect(picks.count(&:nil?)).to eq(8)
      expect(picks.compact.size).to eq(8)
    end

    it "agrees with Rails, and reports each request where a classifier built from reordered routes does not" do
      ours = BenchSides::Ours.new(@table.rows)
      expect(BenchSides.disagreements(@table.requests, @rails, ours)).to eq([])

      reordered = BenchSides::Ours.new(@table.rows.reverse.each_with_index.map { |r, i| r.merge("index" => i) })
      wrong = BenchSides.disagreements(@table.requests, @rails, reordered)
      expect(wrong.size).to eq(8)
      expect(wrong.first).to match(%r{\AGET /gitlab-org/gitlab/-/feature_12: Rails picks #12 .*; recognize #7 .*, learn #7\z})
      expect { BenchSides.gate!("synthetic-20", @table.requests, @rails, reordered) }
        .to raise_error(BenchSides::Disagreement, /synthetic-20: ours and Rails disagree on 8 of 16/)
    end
  end
end
