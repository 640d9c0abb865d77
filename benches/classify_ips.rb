# frozen_string_literal: true

# Classifier#learn / #recognize against Rails' own router (Debian's actionpack), in one process
# and one run, with benchmark-ips. `rake bench` and `script/bench-rails` run it.
#
# Tables (benches/support/bench_tables.rb), the headline first: "gitlab-ce", GitLab CE's web routes
# (gitlab-ce.routes.json: 1,341 routes in definition order, 850 with request-time constraint
# objects) drawn into a real RouteSet, with its 4,033 recorded requests, routed structurally with
# every constraint holding on both sides (see BenchTables.gitlab_ce); each corpus table of ../shared/corpus that has
# recorded vectors (gitlabish: 201 routes, 722 requests); "gitlab-templates", GitLab's own route
# snapshot (gitlab-route-templates.json: 5,066 templates as any-verb routes, requested with each
# template's example and dottedExample; the few templates Rails' mapper cannot draw as written are
# excluded and listed; a secondary table: in the snapshot's alphabetical order Rails stops at
# route #0 for almost every example); and synthetic GitLab-scale tables of N glob routes
# `/*namespace_id/:project_id/-/feature_<i>(.:format)`.
#
# What is timed, per call, cycling through the table's request mix:
# - ours learn:   `classifier.learn(method, path)` on the raw strings (path normalization,
#                    route pick, rules, a frozen Result);
# - ours recognize:  `classifier.recognize(method, path)` (route and parameters);
# - rails recognize: `route_set.router.recognize(request) { |route, _| return route }` on an
#                    ActionDispatch::Request built, with its path_info normalized as
#                    RouteSet#call does, once per request path before timing (so env building and
#                    normalization are not counted for Rails, only Journey's route pick).
# Every side's timed iteration also pays the cycling loop (an array index and a block yield, tens
# of ns; see cycling_report), which is charged to ours too.
# Before any timing, every request is checked: Rails' first route, #recognize's route and
# parameters and #learn's route must agree; otherwise the script exits 2 naming the requests.
#
# Ruby ÷ Rust (BENCH_RUST, on the gitlab-ce and corpus tables): the same classifier's work timed
# from Ruby and by `cells-learn bench` on the same route file and request vectors, one right after
# the other, in BENCH_RATIO_ROUNDS rounds with the order alternating, each figure the median of the
# rounds' ratios. Both route every constraint as holding; the gem builds with `host_regex` (Ruby's
# Regexp decides the requirements only it can), the CLI without: the same automata unless a
# route has such a requirement (none of CE's or the corpus' routes has).
# Like for like: the learn answer (`#learn`, a frozen Result, against `Learner::learned`) and the
# route with its parameters (`#recognize`, a RouteMatch with a Hash, against `recognize` with the
# parameters collected as owned strings); per request the median over the requests of each one
# timed alone (Ruby: K calls in a row, K adaptive as below; Rust: --rounds calls in a row), and
# cycling the mean over (rounds / 10) passes through all the requests in turn, each side with one
# clock reading around the whole run. The 1.5× target is on the learn answer.
#
# Two kinds of figures per table:
# - throughput: benchmark-ips' ops/s of each side cycling through the request mix, and their ratio;
# - per request (the "learn ≤ 1 µs median" figure): every request of the mix timed alone over
#   K back-to-back calls, K adaptive so one timing lasts ≥ BENCH_MEDIAN_US; the median and p90 of
#   ns/call over the requests, for learn and for Rails' recognize, and the ratio of the medians
#   (BenchSides::PerRequest).
#
# Environment:
#   BENCH_TIME=2      seconds measured per report (BENCH_QUICK: 0.2)
#   BENCH_WARMUP=1    seconds of warmup per report (BENCH_QUICK: 0.1)
#   BENCH_SIZES=1000,3000   synthetic table sizes (BENCH_QUICK: 100); "" for none
#   BENCH_CE=1        the gitlab-ce table (0: leave it out)
#   BENCH_CORPUS=gitlabish  corpus tables (default: every *-routes.json with a *-requests.jsonl)
#   BENCH_TEMPLATES=all     templates of the gitlab-templates table: all, N (an evenly spaced
#                           sample of N), or 0 for no such table (BENCH_QUICK: 300)
#   BENCH_MEDIAN_US=200     minimum length of one per-request timing, in µs
#   BENCH_QUICK=1     short run on small tables only (explicit BENCH_* values still win)
#   BENCH_JSON=path   also write the figures as JSON
#   BENCH_RUST=1      also time the Rust side of the same work in the same run, on each table read
#                     from files (gitlab-ce, the corpus tables): `cells-learn bench` on the same
#                     routes and requests, and print Ruby ÷ Rust (0: leave it out)
#   BENCH_CELLS_LEARN=target/release/cells-learn   the CLI that does it
#   BENCH_RUST_ROUNDS=200   its --rounds (BENCH_QUICK: 20); the Ruby side's cycling means make
#                           as many passes as its (rounds / 10)
#   BENCH_RATIO_ROUNDS=5    rounds of the Ruby side and the CLI back to back, the order alternating;
#                           the Ruby ÷ Rust figures are the medians of the rounds' ratios (BENCH_QUICK: 1)
# Options: --quick (BENCH_QUICK=1), --json PATH (BENCH_JSON), --help.

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "benchmark/ips"
require "gitlab/cells/learn"
require_relative "support/bench_tables"
require_relative "support/bench_sides"

USAGE = "usage: ruby benches/classify_ips.rb [--quick] [--json PATH]  " \
        "(env: BENCH_TIME BENCH_WARMUP BENCH_SIZES BENCH_CE BENCH_CORPUS BENCH_TEMPLATES BENCH_MEDIAN_US " \
        "BENCH_QUICK BENCH_JSON BENCH_RUST BENCH_CELLS_LEARN BENCH_RUST_ROUNDS BENCH_RATIO_ROUNDS)"

def fail_usage(message)
  warn "classify_ips: #{message}"
  warn USAGE
  exit 64
end

args = ARGV.dup
until args.empty?
  case (arg = args.shift)
  when "--quick" then ENV["BENCH_QUICK"] = "1"
  when "--json"
    fail_usage("--json needs a path") if args.empty?
    ENV["BENCH_JSON"] = args.shift
  when "-h", "--help"
    puts USAGE
    exit 0
  else fail_usage("unknown argument #{arg.inspect}")
  end
end

quick = ENV["BENCH_QUICK"].to_s == "1"

def seconds_setting(name, default, positive:)
  raw = ENV.fetch(name, nil)
  return default if raw.nil? || raw.strip.empty?

  value = Float(raw, exception: false)
  ok = value&.finite? && (positive ? value.positive? : value >= 0)
  fail_usage("#{name} must be a number of seconds #{positive ? "> 0" : ">= 0"}, not #{raw.inspect}") unless ok
  value
end

time = seconds_setting("BENCH_TIME", quick ? 0.2 : 2.0, positive: true)
warmup = seconds_setting("BENCH_WARMUP", quick ? 0.1 : 1.0, positive: false)

sizes_raw = ENV.fetch("BENCH_SIZES", quick ? "100" : "1000,3000")
sizes = sizes_raw.split(",").map(&:strip).reject(&:empty?).map do |s|
  n = Integer(s, exception: false)
  fail_usage("BENCH_SIZES must be comma-separated route counts >= 10, not #{sizes_raw.inspect}") if n.nil? || n < 10
  n
end

templates_raw = ENV.fetch("BENCH_TEMPLATES", quick ? "300" : "all").strip
templates_limit = case templates_raw
                  when "all", "" then nil
                  else
                    n = Integer(templates_raw, exception: false)
                    fail_usage("BENCH_TEMPLATES must be all, 0 or a number of templates, not #{templates_raw.inspect}") if n.nil? || n.negative?
                    n
                  end
with_templates = templates_limit != 0

ce_raw = ENV.fetch("BENCH_CE", "1").strip
fail_usage("BENCH_CE must be 1 or 0, not #{ce_raw.inspect}") unless %w[1 0].include?(ce_raw)
with_ce = ce_raw == "1"

median_min_ns = (seconds_setting("BENCH_MEDIAN_US", 200.0, positive: true) * 1000).round

rust_raw = ENV.fetch("BENCH_RUST", "1").strip
fail_usage("BENCH_RUST must be 1 or 0, not #{rust_raw.inspect}") unless %w[1 0].include?(rust_raw)
with_rust = rust_raw == "1"
rounds_raw = ENV.fetch("BENCH_RUST_ROUNDS", quick ? "20" : "200").strip
rust_rounds = Integer(rounds_raw, exception: false)
fail_usage("BENCH_RUST_ROUNDS must be a number of rounds >= 10, not #{rounds_raw.inspect}") if rust_rounds.nil? || rust_rounds < 10
ratio_rounds_raw = ENV.fetch("BENCH_RATIO_ROUNDS", quick ? "1" : "5").strip
ratio_rounds = Integer(ratio_rounds_raw, exception: false)
fail_usage("BENCH_RATIO_ROUNDS must be a number of rounds >= 1, not #{ratio_rounds_raw.inspect}") if ratio_rounds.nil? || ratio_rounds < 1
cells_learn = ENV.fetch("BENCH_CELLS_LEARN", "").strip
cells_learn = BenchSides::RustCli::DEFAULT_PATH if cells_learn.empty?
if with_rust && !File.file?(cells_learn)
  warn "classify_ips: #{cells_learn} does not exist: build it with `#{BenchSides::RustCli::BUILD}` " \
       "(or set BENCH_CELLS_LEARN, or BENCH_RUST=0)"
  exit 1
end

corpus_names = if ENV["BENCH_CORPUS"]
                 ENV["BENCH_CORPUS"].split(",").map(&:strip).reject(&:empty?)
               else
                 Dir[File.join(BenchTables::CORPUS_DIR, "*-routes.json")].sort
                                                                         .map { |p| File.basename(p, "-routes.json") }
                                                                         .select { |n| File.file?(File.join(BenchTables::CORPUS_DIR, "#{n}-requests.jsonl")) }
               end
fail_usage("no corpus table to benchmark (BENCH_CORPUS, #{BenchTables::CORPUS_DIR})") if corpus_names.empty?

json_path = ENV.fetch("BENCH_JSON", nil)
json_path = nil if json_path&.empty?

actionpack = Gem.loaded_specs["actionpack"]&.version&.to_s || ActionPack::VERSION::STRING
settings = { "time" => time, "warmup" => warmup, "quick" => quick, "actionpack" => actionpack,
             "templates" => with_templates ? (templates_limit || "all") : 0, "gitlab_ce" => with_ce, "median_min_ns" => median_min_ns,
             "ruby" => RUBY_DESCRIPTION, "benchmark_ips" => Benchmark::IPS::VERSION,
             "rust" => with_rust ? { "cells_learn" => cells_learn, "rounds" => rust_rounds, "ratio_rounds" => ratio_rounds } : nil }

puts "classify_ips: #{RUBY_DESCRIPTION}; actionpack #{actionpack}; benchmark-ips #{Benchmark::IPS::VERSION}"
puts "classify_ips: #{time}s per report after #{warmup}s warmup#{quick ? " (BENCH_QUICK)" : ""}"

# 1. Build every table's two sides and check every benchmarked request before any timing.
begin
  corpus_tables = corpus_names.map { |name| BenchTables.corpus(name) }
  tables = (with_ce ? [BenchTables.gitlab_ce] : []) + corpus_tables
  tables << BenchTables.templates(limit: templates_limit) if with_templates
  requirements = BenchTables.project_requirements(corpus_tables.first.rows)
  tables.concat(sizes.map { |n| BenchTables.synthetic(n, requirements) })
rescue ArgumentError, JSON::ParserError => e
  warn "classify_ips: #{e.message}"
  exit 1
end

prepared = tables.map do |table|
  rails = BenchSides::Rails.new(table.rows)
  ours = BenchSides::Ours.new(table.rows)
  rails_requests = rails.prepare(table.requests)
  begin
    checked = BenchSides.gate!(table.name, table.requests, rails, ours, rails_requests)
  rescue BenchSides::Disagreement => e
    warn "classify_ips: correctness check failed, nothing timed. #{e.message}"
    exit 2
  end
  picks = rails_requests.map { |r| rails.recognize(r) }
  routed = picks.count(&:itself)
  puts format("classify_ips: %-16s %s", table.name, table.description)
  table.excluded.each do |row, reason|
    puts format("classify_ips: %-16s excluded route %s: %s", table.name, row["path"].inspect, reason)
  end
  puts format("classify_ips: %-16s Rails drew the RouteSet in %.0f ms; ours compiled in %.0f ms (%s engine, %s KiB); " \
              "%d/%d requests agree (%d routed, %d unrouted)",
              table.name, rails.draw_seconds * 1000, ours.compile_seconds * 1000, ours.classifier.engine,
              BenchSides.group(ours.classifier.memory_usage / 1024.0, 0), checked, table.requests.size,
              routed, table.requests.size - routed)
  top = picks.compact.tally.max_by(3) { |_, count| count }
  puts format("classify_ips: %-16s %d distinct routes picked; most picked: %s",
              table.name, picks.compact.uniq.size,
              top.map { |route, count| "##{rails.index_of(route)} #{route.path.spec} (#{count})" }.join(", "))
  { table: table, rails: rails, ours: ours, rails_requests: rails_requests, checked: checked, routed: routed }
end

# A benchmark-ips report that calls the block once per iteration with the next item of `items`,
# cycling through them; the cursor carries over between benchmark-ips' calls, so every report sees
# the whole mix in turn however few iterations a slow side gets per call.
def cycling_report(x, label, items)
  n = items.size
  k = 0
  x.report(label) do |times|
    i = 0
    while i < times
      yield items[k]
      k += 1
      k = 0 if k == n
      i += 1
    end
  end
end

# 2. Time them: one benchmark-ips run per table, the three reports side by side; then each request
#    alone, for the per-request medians.
results = prepared.map do |p|
  table = p[:table]
  name = table.name
  reqs = table.requests.map { |m, path| [m.dup.freeze, path.dup.freeze] }.freeze
  rails_reqs = p[:rails_requests]
  n = reqs.size
  classifier = p[:ours].classifier
  rails = p[:rails]
  puts "\n== #{name} =="
  report = Benchmark.ips do |x|
    x.config(time: time, warmup: warmup)
    cycling_report(x, "#{name} ours learn", reqs) { |(method, path)| classifier.learn(method, path) }
    cycling_report(x, "#{name} ours recognize", reqs) { |(method, path)| classifier.recognize(method, path) }
    cycling_report(x, "#{name} rails recognize", rails_reqs) { |prepared_request| rails.recognize(prepared_request) }
    x.compare!
  end
  GC.start
  loop_ns = BenchSides::PerRequest.loop_ns
  learn_ns = BenchSides::PerRequest.learn_ns(classifier, reqs, median_min_ns)
  rails_ns = BenchSides::PerRequest.rails_ns(rails, rails_reqs, median_min_ns)
  medians = BenchSides.medians(learn_ns, rails_ns, median_min_ns).merge("loop_ns" => loop_ns)
  same_run = nil
  if with_rust && table.routes_path
    cycles = [rust_rounds / 10, 1].max
    command = BenchSides::RustCli.command(cells_learn, table.routes_path, table.requests_path, rust_rounds)
    begin
      same_run = BenchSides.same_run_rounds(ratio_rounds, command) do |side|
        next BenchSides.ruby_figures(classifier, reqs, median_min_ns, cycles) if side == :ruby

        rust = BenchSides::RustCli.bench(cells_learn, table.routes_path, table.requests_path, rust_rounds)
        raise BenchSides::RustCli::Failure, "cells-learn bench timed #{rust["requests"]} requests, the Ruby side #{n}" unless rust["requests"] == n

        rust
      end
    rescue BenchSides::RustCli::Failure => e
      warn "classify_ips: #{name}: #{e.message}"
      exit 1
    end
    puts BenchSides.same_run_line(name, same_run)
  end
  puts format("%s per request (%d requests, each timed alone over >= %d µs): learn median %s ns (p90 %s); " \
              "Rails median %s ns (p90 %s); median ratio %s×",
              name, n, median_min_ns / 1000, BenchSides.group(medians["learn_median_ns"], 1),
              BenchSides.group(medians["learn_p90_ns"], 1), BenchSides.group(medians["rails_median_ns"], 0),
              BenchSides.group(medians["rails_p90_ns"], 0), BenchSides.group(medians["median_ratio"], 1))
  by_label = report.entries.to_h { |e| [e.label.delete_prefix("#{name} "), BenchSides.figures(e)] }
  learn, recognize, rails_f = by_label.values_at("ours learn", "ours recognize", "rails recognize")
  {
    "name" => name, "kind" => table.kind, "description" => table.description,
    "routes" => table.rows.size, "requests" => n,
    "excluded" => table.excluded.map { |row, reason| { "path" => row["path"], "reason" => reason } },
    "routed" => p[:routed], "unrouted" => n - p[:routed],
    "agreement" => { "checked" => p[:checked], "agreed" => p[:checked] },
    "build" => { "rails_draw_ms" => p[:rails].draw_seconds * 1000, "ours_compile_ms" => p[:ours].compile_seconds * 1000,
                 "ours_memory_bytes" => classifier.memory_usage, "ours_engine" => classifier.engine },
    "ours" => { "learn" => learn, "recognize" => recognize },
    "rails" => { "recognize" => rails_f },
    "ratio" => { "learn" => learn["ips"] / rails_f["ips"], "recognize" => recognize["ips"] / rails_f["ips"] },
    "per_request" => medians, "same_run_rust" => same_run
  }.merge(medians.slice("learn_median_ns", "rails_median_ns", "median_ratio"))
end

puts BenchSides.summary(results, settings)

if json_path
  File.write(json_path, JSON.pretty_generate({ "settings" => settings, "tables" => results }) + "\n")
  puts "classify_ips: wrote #{json_path}"
end
