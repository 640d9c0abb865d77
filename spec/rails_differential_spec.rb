# frozen_string_literal: true

# Differential test against Rails' own router: every corpus route table is drawn into a real
# ActionDispatch::Routing::RouteSet, read back through RailsRoutes (Classifier.from_rails), and
# for thousands of generated requests plus the recorded vectors the gem must pick the route
# Rails picks, with the same parameters. New `*-routes.json` tables are picked up by the glob.
RSpec.describe "Classifier.from_rails against Rails' router" do
  tables = Dir[File.join(CORPUS_DIR, "*-routes.json")].sort
  it "finds route tables in the corpus" do
    expect(tables).not_to be_empty
  end

  tables.each do |table_path|
    name = File.basename(table_path, "-routes.json")

    context name do
      before(:context) do
        @table = DrawRoutes.load_table(table_path)
        @route_set = DrawRoutes.draw(@table)
        @classifier = Gitlab::Cells::Learn::Classifier.from_rails(@route_set)
        # The same routes split between automata as large tables are (by any literal segment,
        # lazy DFAs): both layouts must pick what Rails picks.
        @lazy_classifier = Gitlab::Cells::Learn::Classifier.from_rails(@route_set, engine: :lazy)
        @index_of = @route_set.routes.routes.each_with_index.to_h
        vectors_path = File.join(CORPUS_DIR, "#{name}-requests.jsonl")
        @vectors = File.exist?(vectors_path) ? File.readlines(vectors_path).map { |l| JSON.parse(l) } : []
      end

      # Rails' pick and ours for one request; a String describing the disagreement, or nil.
      def disagreement(method, path)
        rails = RoutesRailsOracle.pick(@route_set, method, path)
        rails_index = rails && @index_of.fetch(rails.route)
        [@classifier, @lazy_classifier].each do |classifier|
          ours = classifier.recognize(method, path)
          same = if rails.nil? || ours.nil?
                   rails.nil? && ours.nil?
                 else
                   rails_index == ours.route.index && rails.route.path.spec.to_s == ours.route.spec &&
                     RoutesRailsOracle.same_params?(rails.params, ours.params)
                 end
          next if same

          rails_desc = rails ? "##{rails_index} #{rails.route.verb} #{rails.route.path.spec} #{rails.params.inspect}" : "no route"
          ours_desc = ours ? "##{ours.route.index} #{ours.route.verb} #{ours.route.spec} #{ours.params.inspect}" : "no route"
          return "#{method} #{path.inspect}: Rails #{rails_desc}; ours (#{classifier.engine}) #{ours_desc}"
        end
        nil
      end

      it "draws a RouteSet that reproduces the table and reads back to the same rows" do
        expect(@route_set.routes.size).to eq(@table.size)
        expect(Gitlab::Cells::Learn::RailsRoutes.extract(@route_set)).to eq(@table.each_with_index.map { |r, i| r.merge("index" => i) })
      end

      it "still gives the recorded Rails decisions (#{name}-requests.jsonl) with the drawn RouteSet" do
        skip "no #{name}-requests.jsonl" if @vectors.empty?

        wrong = @vectors.filter_map do |v|
          pick = RoutesRailsOracle.pick(@route_set, v["method"], v["path"])
          got = pick && [@index_of.fetch(pick.route), pick.params]
          want = v["route_index"] && [v["route_index"], v["params"]]
          next if got.nil? && want.nil?
          next if got && want && got[0] == want[0] && RoutesRailsOracle.same_params?(got[1], want[1])

          "#{v["method"]} #{v["path"]}: recorded #{want.inspect}, drawn RouteSet #{got.inspect}"
        end
        expect(wrong).to be_empty, wrong.first(20).join("\n")
      end

      it "picks Rails' route and parameters for generated requests, near-misses and the recorded vectors" do
        requests = RoutesRequests.for_table(@table).map { |r| [r.method, r.path] }
        requests.concat(@vectors.map { |v| [v["method"], v["path"]] }).uniq!

        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        failures = requests.filter_map { |method, path| disagreement(method, path) }
        elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
        matched = requests.count { |method, path| @classifier.recognize(method, path) }
        puts format("\n  [rails differential] %s: %d requests compared (%d routed, %d unrouted) against Rails in %.1fs; %d disagreements",
                    name, requests.size, matched, requests.size - matched, elapsed, failures.size)

        expect(requests.size).to be > 1000
        expect(failures).to be_empty, "#{failures.size} disagreements with Rails:\n#{failures.first(30).join("\n")}"
      end
    end
  end
end
