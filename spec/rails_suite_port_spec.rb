# frozen_string_literal: true

require "action_dispatch"

# Rails 6.1's own routing tests, ported (spec/support/rails_suite_tables.rb): every table is drawn
# into a real RouteSet, read with Classifier.from_rails, and for every request the Rails test
# makes, under every verb, plus the near-misses RoutesRequests generates from the table, the gem
# must pick Rails' route with Rails' parameters — or refuse with Rails' 400 where Rails would.
RSpec.describe "Rails' own routing tests, ported" do
  verbs = %w[GET HEAD POST PUT PATCH DELETE]
  totals = { tables: 0, compiled: 0, requests: 0, agreed: 0 }

  after(:context) do
    puts format("\n  [rails suite port] %<tables>d tables, %<compiled>d compiled; %<requests>d requests, %<agreed>d agree with Rails", totals)
  end

  RailsSuiteTables.all.each do |t|
    it "#{t.source} #{t.name}" do
      totals[:tables] += 1
      route_set = ActionDispatch::Routing::RouteSet.new
      route_set.draw(&t.draw)
      classifier = Gitlab::Cells::Learn::Classifier.from_rails(route_set)
      totals[:compiled] += 1
      index_of = route_set.routes.routes.each_with_index.to_h
      requests = verbs.product(t.requests).map { |m, p| [m, p] }
      requests += RoutesRequests.for_table(Gitlab::Cells::Learn::RailsRoutes.extract(route_set)).map { |r| [r.method, r.path] }
      disagreements = requests.uniq.filter_map do |method, path|
        totals[:requests] += 1
        rails = RoutesRailsOracle.pick(route_set, method, path)
        want = rails && [index_of.fetch(rails.route), rails.params.transform_values(&:b)]
        got = begin
          ours = classifier.recognize(method, path)
          ours && [ours.route.index, ours.params.transform_values(&:b)]
        rescue Gitlab::Cells::Learn::InvalidRequestError => e
          # Rails' 400 when serving: the picked route's parameter is not UTF-8.
          bad = RoutesRailsOracle.param_not_utf8?(rails)
          bad && e.message.include?("Rails answers 400") ? want : [:error, e.message]
        end
        totals[:agreed] += 1 if want == got
        "#{method} #{path.inspect}: Rails #{want.inspect}, ours #{got.inspect}" unless want == got
      end
      expect(disagreements).to be_empty, disagreements.first(15).join("\n")
    end
  end
end
