# frozen_string_literal: true

require "json"
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

    # Rails' pick for the gate: [route index, parameters] or nil (not timed).
    def pick(prepared)
      route = recognize(prepared)
      route && [@index_of.fetch(route), RoutesRailsOracle.params_of(route, prepared[1])]
    end
  end

  # The gem on the same rows: `Classifier.new(routes: rows)` (compiled once, outside timing).
  # Timed calls: `#classify(method, path)` (route, rules, learn answer; a frozen Result) and
  # `#recognize(method, path)` (route and parameters), on the raw method and path strings of the
  # request mix (the classifier normalizes the path itself, inside the timed call).
  class Ours
    attr_reader :classifier, :compile_seconds

    def initialize(rows)
      started = BenchSides.now
      @classifier = Gitlab::Cells::Learn::Classifier.new(routes: rows)
      @compile_seconds = BenchSides.now - started
    end

    # Ours for the gate: [recognize's route index, its params, classify's route index] or nil.
    def pick(method, path)
      match = @classifier.recognize(method, path)
      result = @classifier.classify(method, path)
      [match&.route&.index, match&.params, result.route&.index]
    end
  end

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Every benchmarked request where ours and Rails differ: Rails' route index (first route its
  # router yields) against `Classifier#recognize`'s route and `#classify`'s route, and Rails'
  # path parameters against recognize's (compared byte-wise).
  #
  # @return [Array<String>] one description per disagreeing request (empty when all agree)
  def disagreements(requests, rails, ours, prepared = rails.prepare(requests))
    requests.zip(prepared).filter_map do |(method, path), prep|
      want_index, want_params = rails.pick(prep)
      got_index, got_params, classify_index = ours.pick(method, path)
      same = want_index == got_index && classify_index == got_index &&
             (want_index.nil? || RoutesRailsOracle.same_params?(want_params, got_params))
      next if same

      "#{method} #{path}: Rails picks #{describe(want_index, want_params)}; " \
        "recognize #{describe(got_index, got_params)}, classify #{describe(classify_index, nil)}"
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

  # The summary block printed after every table has run.
  def summary(results, settings)
    lines = []
    lines << ""
    lines << "== Summary: Classifier vs Rails' router (actionpack #{settings['actionpack']}), same run, " \
             "#{settings['time']}s per report after #{settings['warmup']}s warmup =="
    lines << format("%-16s %6s %6s  %-16s %15s %14s", "table", "routes", "reqs", "side", "ops/s", "mean ns/op")
    results.each do |t|
      sides = [["ours classify", t["ours"]["classify"]], ["ours recognize", t["ours"]["recognize"]],
               ["rails recognize", t["rails"]["recognize"]]]
      sides.each_with_index do |(label, f), i|
        head = i.zero? ? [t["name"], t["routes"].to_s, t["requests"].to_s] : ["", "", ""]
        lines << format("%-16s %6s %6s  %-16s %15s %14s", *head, label, group(f["ips"], 1), group(f["ns_per_op"], 1))
      end
      lines << format("  %s: classify is %s× faster than Rails' router (same run); recognize is %s×. " \
                      "Picks agreed with Rails on %d/%d requests.",
                      t["name"], group(t["ratio"]["classify"], 1), group(t["ratio"]["recognize"], 1),
                      t["agreement"]["agreed"], t["agreement"]["checked"])
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
