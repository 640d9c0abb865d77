# frozen_string_literal: true

require "json"
require "open3"
require_relative "stats"
require_relative "../../spec/support/draw_routes"
require_relative "../../spec/support/routes_rails_oracle"

# The two sides `benches/classify_ips.rb` times on one table, the correctness gate run before any
# timing, and the figures it reports.
module BenchSides
  # Raised by {BenchSides.gate!} when ours and Rails pick different routes for a benchmarked request.
  class Disagreement < StandardError; end

  # Rails' own router on a table drawn into a real `ActionDispatch::Routing::RouteSet`.
  #
  # Per request, {#prepare} builds outside the timed loop what a Rails app has before routing: the
  # Rack env (`RoutesRailsOracle.env_for`), the `ActionDispatch::Request` over it, and its
  # `path_info` normalized (`Journey::Router::Utils.normalize_path`, as `RouteSet#call` does). The
  # timed call is {#recognize}: `route_set.router.recognize(request)` up to the first route it
  # yields, i.e. Journey's `find_routes` (simulator for simple routes, then every custom route's
  # regexp, verb and requirement checks, precedence sort, parameter extraction) — the work Rails
  # does per request to pick the route, without dispatching to a controller.
  class Rails
    attr_reader :route_set, :draw_seconds

    def initialize(rows)
      started = BenchSides.now
      @route_set = DrawRoutes.draw(rows)
      @route_set.router.send(:simulator) # built once at boot by eager_load!, not per request
      @draw_seconds = BenchSides.now - started
      @index_of = @route_set.routes.routes.each_with_index.to_h
      # `recognize` rewrites script_name/path_info for mounted (unanchored) routes; restore them.
      @mounted = @route_set.routes.routes.any? { |r| !r.path.anchored }
    end

    # @return [Array<Array(ActionDispatch::Request, String)>] requests with their normalized path
    def prepare(requests)
      requests.map do |method, raw|
        req = ActionDispatch::Request.new(RoutesRailsOracle.env_for(method, raw))
        req.path_info = ActionDispatch::Journey::Router::Utils.normalize_path(req.path_info)
        [req, req.path_info.dup.freeze]
      end
    end

    # The timed call: the first route Rails' router yields for a prepared request, or nil.
    def recognize(prepared)
      req, path_info = prepared
      if @mounted
        req.script_name = ""
        req.path_info = path_info
      end
      @route_set.router.recognize(req) { |route, _params| return route }
      nil
    end

    # @return [Integer] the definition-order index of a route of this route set
    def index_of(route)
      @index_of.fetch(route)
    end

    # Rails' pick for the gate: [route index, parameters] or nil (not timed).
    def pick(prepared)
      route = recognize(prepared)
      route && [@index_of.fetch(route), RoutesRailsOracle.params_of(route, prepared[1])]
    end
  end

  # The gem on the same rows: `Classifier.new(routes: rows)` (compiled once, outside timing).
  # Timed calls: `#learn(method, path)` (route, rules, learn answer; a frozen Result) and
  # `#recognize(method, path)` (route and parameters), on the raw method and path strings of the
  # request mix (the classifier normalizes the path itself, inside the timed call).
  class Ours
    attr_reader :classifier, :compile_seconds

    def initialize(rows)
      started = BenchSides.now
      @classifier = Gitlab::Cells::Learn::Classifier.new(routes: rows)
      @compile_seconds = BenchSides.now - started
    end

    # Ours for the gate: [recognize's route index, its params, learn's route index] or nil.
    def pick(method, path)
      match = @classifier.recognize(method, path)
      result = @classifier.learn(method, path)
      [match&.route&.index, match&.params, result.route&.index]
    end
  end

  # Per-request timings: each request timed alone, over K back-to-back calls, K grown until one
  # timing lasts at least `min_ns` (so clock resolution and the clock read are negligible); the
  # figure for the request is that timing / K. One untimed call warms each request first (the lazy
  # DFA builds its states on first use; benchmark-ips' warmup does the same for its loops). Each
  # loop is written out for its side so that the only per-call overhead is a `while` iteration
  # (see {loop_ns}), charged to both sides.
  module PerRequest
    module_function

    def clock_ns
      Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
    end

    # `learn_ns` / `recognize_ns(classifier, requests, min_ns)`: ns per `classifier.learn(method,
    # path)` (`#recognize`) call, one per request. `learn_cycling_ns` / `recognize_cycling_ns(
    # classifier, requests, cycles)`: mean ns per call over `cycles` passes through all the
    # requests in turn, one timing for the whole run, as `cells-learn bench` times its cycling
    # means. Written out per method (a `send` would add its own cost to every timed call).
    %w[learn recognize].each do |call|
      module_eval <<~RUBY, __FILE__, __LINE__ + 1
        def #{call}_ns(classifier, requests, min_ns)       # def learn_ns(classifier, requests, min_ns)
          requests.map do |method, path|                   #   requests.map do |method, path|
            classifier.#{call}(method, path)               #     classifier.learn(method, path)
            adaptive(min_ns) do |k|                        #     adaptive(min_ns) do |k|
              started = clock_ns                           #       started = clock_ns
              i = 0                                        #       i = 0
              while i < k                                  #       while i < k
                classifier.#{call}(method, path)           #         classifier.learn(method, path)
                i += 1                                     #         i += 1
              end                                          #       end
              clock_ns - started                           #       clock_ns - started
            end                                            #     end
          end                                              #   end
        end                                                # end

        def #{call}_cycling_ns(classifier, requests, cycles) # def learn_cycling_ns(classifier, requests, cycles)
          n = requests.size                                #   n = requests.size
          started = clock_ns                               #   started = clock_ns
          c = 0                                            #   c = 0
          while c < cycles                                 #   while c < cycles
            i = 0                                          #     i = 0
            while i < n                                    #     while i < n
              method, path = requests[i]                   #       method, path = requests[i]
              classifier.#{call}(method, path)             #       classifier.learn(method, path)
              i += 1                                       #       i += 1
            end                                            #     end
            c += 1                                         #     c += 1
          end                                              #   end
          (clock_ns - started).to_f / (cycles * n)         #   (clock_ns - started).to_f / (cycles * n)
        end                                                # end
      RUBY
      module_function :"#{call}_ns", :"#{call}_cycling_ns"
    end

    # @return [Array<Float>] ns per `rails.recognize(prepared)` call, one per prepared request
    def rails_ns(rails, prepared_requests, min_ns)
      prepared_requests.map do |prepared|
        rails.recognize(prepared)
        adaptive(min_ns) do |k|
          started = clock_ns
          i = 0
          while i < k
            rails.recognize(prepared)
            i += 1
          end
          clock_ns - started
        end
      end
    end

    # ns per iteration of the timing loop with nothing in it.
    def loop_ns(iterations = 1_000_000)
      started = clock_ns
      i = 0
      i += 1 while i < iterations
      (clock_ns - started).to_f / iterations
    end

    # Calls the block with K (1, then grown) until the returned elapsed ns reach `min_ns`.
    # @return [Float] the last timing / K
    def adaptive(min_ns)
      k = 1
      loop do
        elapsed = yield(k)
        return elapsed.to_f / k if elapsed >= min_ns

        grown = elapsed.positive? ? (k * min_ns * 1.2 / elapsed).ceil : k * 16
        k = grown.clamp(k * 2, k * 64)
      end
    end

    # @return [Float] the q-quantile (0..1) of the values, nearest rank
    def quantile(values, q)
      raise ArgumentError, "no values" if values.empty?

      sorted = values.sort
      sorted[((sorted.size * q).ceil - 1).clamp(0, sorted.size - 1)]
    end
  end

  # The Rust side of the same work, run in the same bench run: `cells-learn bench` on the same
  # route table and request vectors. It builds the classifier without the gem's `host_regex` (the
  # same automata unless a route has a requirement only Ruby's Regexp can decide) and routes every
  # constraint as holding (no host: `Classifier#recognize` with `|_| true`), which is how the
  # Ruby side is asked here (no block, no `constraints:`). Its figures: per request, `rounds`
  # calls of one request in a row (the median over requests); cycling, `rounds / 10` passes
  # through all requests in turn (the mean).
  module RustCli
    DEFAULT_PATH = File.expand_path("../../target/release/cells-learn", __dir__)
    BUILD = "cargo build --release --locked -p cells-learn-cli"

    # Raised when the CLI is missing, fails or prints something else than its figures.
    class Failure < StandardError; end

    # The figures a Ruby ÷ Rust ratio needs, as `cells-learn bench` names them.
    FIGURES = %w[ns_per_learn_median ns_per_learn_cycling_mean ns_per_recognize_params_median
                 ns_per_recognize_params_cycling_mean ns_per_classify_median ns_per_classify_cycling_mean].freeze

    module_function

    # @return [Array<String>] the command line
    def command(bin, routes_path, requests_path, rounds)
      [bin, "bench", "--routes", routes_path, "--requests", requests_path, "--rounds", rounds.to_s]
    end

    # Runs the CLI. @return [Hash] its JSON figures
    # @raise [Failure] with a one-line reason
    def bench(bin, routes_path, requests_path, rounds)
      raise Failure, "#{bin} does not exist: build it with `#{BUILD}` (or point BENCH_CELLS_LEARN at it)" unless File.file?(bin)

      out, err, status = Open3.capture3(*command(bin, routes_path, requests_path, rounds))
      raise Failure, "#{command(bin, routes_path, requests_path, rounds).join(" ")} failed (#{status}): #{err.lines.last.to_s.strip}" unless status.success?

      figures = JSON.parse(out)
      missing = FIGURES.reject { |f| figures[f].is_a?(Numeric) && figures[f].positive? }
      raise Failure, "#{bin} bench printed no #{missing.join(", ")} (an older build? rebuild with `#{BUILD}`)" unless missing.empty?

      figures
    rescue JSON::ParserError => e
      raise Failure, "#{bin} bench printed no JSON: #{e.message.lines.first.strip}"
    end
  end

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Every benchmarked request where ours and Rails differ: Rails' route index (first route its
  # router yields) against `Classifier#recognize`'s route and `#learn`'s route, and Rails'
  # path parameters against recognize's (compared byte-wise).
  #
  # @return [Array<String>] one description per disagreeing request (empty when all agree)
  def disagreements(requests, rails, ours, prepared = rails.prepare(requests))
    requests.zip(prepared).filter_map do |(method, path), prep|
      want_index, want_params = rails.pick(prep)
      got_index, got_params, learn_index = ours.pick(method, path)
      same = want_index == got_index && learn_index == got_index &&
             (want_index.nil? || RoutesRailsOracle.same_params?(want_params, got_params))
      next if same

      "#{method} #{path}: Rails picks #{describe(want_index, want_params)}; " \
        "recognize #{describe(got_index, got_params)}, learn #{describe(learn_index, nil)}"
    end
  end

  # @raise [Disagreement] naming each request (up to 20) where ours and Rails differ
  # @return [Integer] the number of requests checked
  def gate!(table_name, requests, rails, ours, prepared = rails.prepare(requests))
    wrong = disagreements(requests, rails, ours, prepared)
    unless wrong.empty?
      raise Disagreement, "#{table_name}: ours and Rails disagree on #{wrong.size} of #{requests.size} " \
                          "benchmarked requests:\n  #{wrong.first(20).join("\n  ")}"
    end
    requests.size
  end

  def describe(index, params)
    return "no route" if index.nil?

    params ? "##{index} #{params.inspect}" : "##{index}"
  end

  # Figures of one benchmark-ips entry.
  # @return [Hash] "ips" (benchmark-ips' mean of per-sample ops/s), "ns_per_op" (total measured
  #   time / iterations), "iterations", "seconds"
  def figures(entry)
    {
      "ips" => entry.ips.to_f,
      "ips_sd" => entry.ips_sd.to_f,
      "ns_per_op" => entry.microseconds * 1000.0 / entry.iterations,
      "iterations" => entry.iterations,
      "seconds" => entry.microseconds / 1_000_000.0
    }
  end

  # The per-request figures of one table (see {PerRequest}).
  # @return [Hash] "learn_median_ns", "learn_p90_ns", "rails_median_ns", "rails_p90_ns",
  #   "median_ratio" (rails median / learn median), "requests_timed", "min_timing_ns"
  def medians(learn_ns, rails_ns, min_ns)
    learn_median = PerRequest.quantile(learn_ns, 0.5)
    rails_median = PerRequest.quantile(rails_ns, 0.5)
    {
      "learn_median_ns" => learn_median, "learn_p90_ns" => PerRequest.quantile(learn_ns, 0.9),
      "rails_median_ns" => rails_median, "rails_p90_ns" => PerRequest.quantile(rails_ns, 0.9),
      "median_ratio" => rails_median / learn_median,
      "requests_timed" => learn_ns.size, "min_timing_ns" => min_ns
    }
  end

  # The Ruby ÷ Rust target of the learn answer (issue 17: from Ruby within 1.5× of the Rust figure).
  RUBY_OVER_RUST_TARGET = 1.5

  # The Ruby side's figures for one round of the Ruby ÷ Rust comparison, defined as the CLI's
  # (see benches/classify_ips.rb's header).
  # @return [Hash] "learn_median_ns", "learn_cycling_ns", "recognize_median_ns",
  #   "recognize_cycling_ns", "cycles"
  def ruby_figures(classifier, requests, min_ns, cycles)
    {
      "learn_median_ns" => PerRequest.quantile(PerRequest.learn_ns(classifier, requests, min_ns), 0.5),
      "learn_cycling_ns" => PerRequest.learn_cycling_ns(classifier, requests, cycles),
      "recognize_median_ns" => PerRequest.quantile(PerRequest.recognize_ns(classifier, requests, min_ns), 0.5),
      "recognize_cycling_ns" => PerRequest.recognize_cycling_ns(classifier, requests, cycles),
      "cycles" => cycles
    }
  end

  # Figures compared Ruby ÷ Rust: the Ruby side's key and `cells-learn bench`'s.
  SAME_RUN_PAIRS = { "learn_median" => %w[learn_median_ns ns_per_learn_median],
                     "learn_cycling" => %w[learn_cycling_ns ns_per_learn_cycling_mean],
                     "recognize_median" => %w[recognize_median_ns ns_per_recognize_params_median],
                     "recognize_cycling" => %w[recognize_cycling_ns ns_per_recognize_params_cycling_mean] }.freeze

  # `rounds` rounds of the Ruby side and the CLI back to back, the order alternating (Ruby first
  # in odd rounds, the CLI first in even ones): a drift of the machine's speed over the run then
  # hits both sides alike instead of whichever ran second, and the figure is the median of the
  # per-round ratios (one pair of runs moved 1.32–1.71× on the same build).
  # @yieldparam side [Symbol] :ruby or :rust, the side to run now
  # @yieldreturn [Hash] {ruby_figures}' Hash for :ruby, `cells-learn bench`'s JSON for :rust
  def same_run_rounds(rounds, command)
    runs = (1..rounds).map do |round|
      order = round.odd? ? %i[ruby rust] : %i[rust ruby]
      figures = order.to_h { |side| [side, yield(side)] }
      same_run_round(round, order, figures[:ruby], figures[:rust])
    end
    ratio = SAME_RUN_PAIRS.keys.to_h { |name| [name, Stats.median(runs.map { |r| r["ratio"][name] })] }
    { "rounds" => runs, "ratio" => ratio, "command" => command.join(" "), "target" => RUBY_OVER_RUST_TARGET,
      "met" => ratio.values_at("learn_median", "learn_cycling").all? { |r| r <= RUBY_OVER_RUST_TARGET } }
  end

  # One round's figures and ratios.
  def same_run_round(round, order, ruby, rust)
    ratio = SAME_RUN_PAIRS.transform_values { |ours, theirs| ruby.fetch(ours) / rust.fetch(theirs) }
    { "round" => round, "first" => order.first.to_s, "ruby" => ruby,
      "rust" => rust.slice("rounds", "cycles", "requests", *RustCli::FIGURES), "ratio" => ratio }
  end

  # One line of {same_run_rounds}' figures: the medians of the per-round ratios, each round's
  # learn ratios, and the figures of the round whose learn median ratio is the median one.
  def same_run_line(name, s)
    rounds, ratio = s.values_at("rounds", "ratio")
    mid = rounds.min_by { |r| [(r["ratio"]["learn_median"] - ratio["learn_median"]).abs, r["round"]] }
    ruby, rust = mid.values_at("ruby", "rust")
    by_round = rounds.map { |r| "#{group(r["ratio"]["learn_median"], 2)}/#{group(r["ratio"]["learn_cycling"], 2)}" }
    format("  %s Ruby ÷ Rust (same run, %d alternated rounds of `cells-learn bench --rounds %d` and the Ruby side, " \
           "cycling over %d passes; median of the rounds' ratios): learn median %s×, cycling %s× " \
           "(by round, median/cycling: %s; round %d: %s ÷ %s ns, %s ÷ %s ns); recognize (route and parameters) median %s×, " \
           "cycling %s×; within %s× on the learn answer: %s",
           name, rounds.size, rust["rounds"], ruby["cycles"], group(ratio["learn_median"], 2), group(ratio["learn_cycling"], 2),
           by_round.join(" "), mid["round"], group(ruby["learn_median_ns"], 1), group(rust["ns_per_learn_median"], 1),
           group(ruby["learn_cycling_ns"], 1), group(rust["ns_per_learn_cycling_mean"], 1),
           group(ratio["recognize_median"], 2), group(ratio["recognize_cycling"], 2), group(s["target"], 1),
           s["met"] ? "met" : "not met")
  end

  # The summary block printed after every table has run.
  def summary(results, settings)
    lines = []
    lines << ""
    lines << "== Summary: Classifier vs Rails' router (actionpack #{settings["actionpack"]}), same run, " \
             "#{settings["time"]}s per report after #{settings["warmup"]}s warmup =="
    lines << format("%-16s %6s %6s  %-16s %15s %14s", "table", "routes", "reqs", "side", "ops/s", "mean ns/op")
    results.each do |t|
      sides = [["ours learn", t["ours"]["learn"]], ["ours recognize", t["ours"]["recognize"]],
               ["rails recognize", t["rails"]["recognize"]]]
      sides.each_with_index do |(label, f), i|
        head = i.zero? ? [t["name"], t["routes"].to_s, t["requests"].to_s] : ["", "", ""]
        lines << format("%-16s %6s %6s  %-16s %15s %14s", *head, label, group(f["ips"], 1), group(f["ns_per_op"], 1))
      end
      lines << format("  %s: learn is %s× faster than Rails' router (same run), cycling through the requests; recognize is %s×. " \
                      "Picks agreed with Rails on %d/%d requests.",
                      t["name"], group(t["ratio"]["learn"], 1), group(t["ratio"]["recognize"], 1),
                      t["agreement"]["agreed"], t["agreement"]["checked"])
      m = t["per_request"]
      lines << format("  %s per request: learn median %s ns (p90 %s), Rails median %s ns (p90 %s): " \
                      "median ratio %s× (%d requests, each timed alone over >= %s µs; empty loop %.1f ns/iteration)",
                      t["name"], group(m["learn_median_ns"], 1), group(m["learn_p90_ns"], 1),
                      group(m["rails_median_ns"], 0), group(m["rails_p90_ns"], 0), group(m["median_ratio"], 1),
                      m["requests_timed"], group(m["min_timing_ns"] / 1000.0, 0), m["loop_ns"])
      lines << same_run_line(t["name"], t["same_run_rust"]) if t["same_run_rust"]
      if t["kind"] == "templates"
        lines << "  #{t["name"]}: secondary figure: in the snapshot's alphabetical order Rails stops at route #0 " \
                 "for almost every example (the gitlab-ce table is the headline)"
      end
      unless t["excluded"].empty?
        lines << format("  %s: %d routes excluded (%s)", t["name"], t["excluded"].size,
                        t["excluded"].map { |e| e["reason"].sub(/ to ".*/, "") }.tally.map { |r, c| "#{c}: #{r}" }.join("; "))
      end
    end
    lines.join("\n")
  end

  # 1234567.891 -> "1,234,567.9"
  def group(number, decimals)
    whole, frac = format("%.#{decimals}f", number).split(".")
    whole = whole.reverse.scan(/\d{1,3}/).join(",").reverse.prepend(whole.start_with?("-") ? "-" : "")
    frac ? "#{whole}.#{frac}" : whole
  end
end
