# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"
require_relative "../benches/support/bench_tables"
require_relative "../benches/support/bench_sides"

# benches/classify_ips.rb (`rake bench`, script/bench-rails): the quick mode runs end to end and
# writes positive figures for both sides of every table; the correctness gate that runs before any
# timing really compares picks (a tampered classifier makes the script exit 2 without timing).
RSpec.describe "benches/classify_ips.rb" do
  bench = File.join(REPO_ROOT, "benches", "classify_ips.rb")

  def run_bench(*args, env: {})
    Open3.capture3({ "BENCH_QUICK" => "1" }.merge(env), RbConfig.ruby, *args, chdir: REPO_ROOT)
  end

  context "in BENCH_QUICK mode with BENCH_JSON" do
    before(:context) do
      @dir = Dir.mktmpdir("bench-json")
      @json_path = File.join(@dir, "figures.json")
      @stdout, @stderr, @status = run_bench(bench, env: { "BENCH_JSON" => @json_path })
      @figures = File.exist?(@json_path) ? JSON.parse(File.read(@json_path)) : nil
    end

    after(:context) { FileUtils.remove_entry(@dir) }

    it "exits 0 and writes the JSON" do
      expect(@status.exitstatus).to eq(0), "stdout:\n#{@stdout}\nstderr:\n#{@stderr}"
      expect(@figures).to be_a(Hash)
      expect(@figures["settings"]).to include("quick" => true, "time" => 0.2, "warmup" => 0.1)
    end

    it "benchmarks the corpus table and a small synthetic table only" do
      expect(@figures["tables"].map { |t| t["name"] }).to eq(%w[gitlabish synthetic-100])
      corpus = @figures["tables"].first
      expect(corpus).to include("routes" => 201, "requests" => 722, "routed" => 624, "unrouted" => 98)
    end

    it "has positive ops/s and ns/op for ours (classify, recognize) and Rails on every table, and their ratio" do
      @figures["tables"].each do |t|
        sides = { "ours classify" => t["ours"]["classify"], "ours recognize" => t["ours"]["recognize"],
                  "rails recognize" => t["rails"]["recognize"] }
        sides.each do |label, f|
          expect(f["ips"]).to be > 0, "#{t['name']} #{label}: #{f.inspect}"
          expect(f["ns_per_op"]).to be > 0
          expect(f["iterations"]).to be > 0
        end
        expect(t["ratio"]["classify"]).to be_within(1e-9).of(t["ours"]["classify"]["ips"] / t["rails"]["recognize"]["ips"])
        expect(t["ratio"]["recognize"]).to be_within(1e-9).of(t["ours"]["recognize"]["ips"] / t["rails"]["recognize"]["ips"])
      end
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
        expect(@stdout).to match(/#{Regexp.escape(t['name'])}: classify is [\d,.]+× faster than Rails' router \(same run\)/)
      end
    end
  end

  it "exits 2 before timing anything when a pick differs from Rails' (the gate can fail)" do
    vector = File.foreach(File.join(CORPUS_DIR, "gitlabish-requests.jsonl")).map { |l| JSON.parse(l) }
                 .find { |v| v["route_index"] && v["method"] == "GET" }
    Dir.mktmpdir("bench-tamper") do |dir|
      tamper = File.join(dir, "tamper.rb")
      File.write(tamper, <<~RUBY)
        $LOAD_PATH.unshift #{File.join(REPO_ROOT, 'lib').inspect}
        require "gitlab/cells/learn"
        # Ours "forgets" the route of one recorded request.
        module TamperedRecognize
          def recognize(method, path_info, &block)
            path_info == #{vector['path'].inspect} ? nil : super
          end
        end
        Gitlab::Cells::Learn::Classifier.prepend(TamperedRecognize)
      RUBY
      stdout, stderr, status = run_bench("-r", tamper, bench, env: { "BENCH_SIZES" => "" })
      expect(status.exitstatus).to eq(2), "stdout:\n#{stdout}\nstderr:\n#{stderr}"
      expect(stderr).to include("correctness check failed, nothing timed")
      expect(stderr).to include("gitlabish: ours and Rails disagree on")
      expect(stderr).to include("#{vector['method']} #{vector['path']}: Rails picks ##{vector['route_index']}")
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
      expect(wrong.first).to match(%r{\AGET /gitlab-org/gitlab/-/feature_12: Rails picks #12 .*; recognize #7 .*, classify #7\z})
      expect { BenchSides.gate!("synthetic-20", @table.requests, @rails, reordered) }
        .to raise_error(BenchSides::Disagreement, /synthetic-20: ours and Rails disagree on 8 of 16/)
    end
  end
end
