# frozen_string_literal: true

require "action_dispatch"

# Requirements with Onigmo constructs no DFA can express: `from_rails` compiles the table, the
# automaton widens the construct, and Ruby's own Regexp decides each candidate (Journey's regexp,
# Journey's capture arithmetic). Every table is drawn into a real RouteSet and every answer is
# compared with Rails' router, on paths that match the requirement and paths that do not.
# Constructs that can never match inside Journey's route regexp (Rails routes nothing to them).
NEVER_MATCHED_IN_JOURNEY = ["back-reference to the parameter", "\\G"].freeze

RSpec.describe "Onigmo constructs only Ruby can decide" do
  # name => [requirement, matching and non-matching values]
  constructs = {
    # Inside Journey's regexp group 1 is the parameter itself: `\1` (a reference to an open
    # group) never matches there, and `\2` is the requirement's first group, not its second.
    "back-reference to the parameter" => [/(a|b)\1x/, %w[aax bbx abx]],
    "back-reference" => [/(a|b)(a|b)\2x/, %w[aaax abax abbx ax aaaxx]],
    "named back-reference" => [/(?<c>[a-z])\k<c>/, %w[aa zz ab a aaa]],
    "subexpression call" => [/(?<d>\d)-\g<d>/, %w[1-2 9-9 1- a-1 12-3]],
    "Unicode property" => [/\p{Alpha}+\d/, %w[abc1 Z9 123 abc _1]],
    "negated Unicode property" => [/\P{Digit}{2}/, %w[ab a1 12 abc]],
    "keep (\\K)" => [/ab\Kc+/, %w[abc abccc ac ab c]],
    "absence operator" => [/(?~ab)/, %w[xyz a b aab xab ba]],
    "conditional" => [/(a)?(?(1)b|c)/, %w[ab c b ac abc]],
    "linebreak (\\R)" => [/x\R?y/, %w[xy xzy x y]],
    "extended grapheme (\\X)" => [/\X{2}/, %w[ab a abc 12]],
    # \G anchors at the start of the search: never after Journey's `\A/c/`.
    "\\G" => [/\Gab/, %w[ab ba abab]],
    "control escape" => [Regexp.new("a\\cAb"), ["a\u0001b", "ab"]],
    "non-ASCII class" => [/[é-ü]+|[a-c]+/, %w[abc d é ü ça]],
    "non-ASCII escape" => [/x\u00e9?/, %w[x xé xy]],
    "named group" => [/(?<n>ab)+/, %w[ab abab aba ba]]
  }

  def self.answer(name)
    ->(_env) { [200, {}, [name]] }
  end

  # The path a value is requested at: raw, as a client that does not escape would send it, and
  # percent-encoded (Journey matches the path as it comes, so `%C3%A9` is not `é`).
  def self.paths(value)
    escaped = value.bytes.map { |b| b < 0x80 ? b.chr : format("%%%02X", b) }.join
    ["/c/#{value}", "/c/#{escaped}", "/c/#{value}.json", "/c/#{value}/x", "/c/x#{value}", "/c/#{value}#{value}"].uniq
  end

  constructs.each do |name, (requirement, values)|
    context "#{name} (#{requirement.inspect})" do
      before(:context) do
        spec = self.class
        @route_set = ActionDispatch::Routing::RouteSet.new
        @route_set.draw do
          get "/c/:id(.:format)", to: spec.answer("constrained"), constraints: { id: requirement }
          get "/c/:id/x", to: spec.answer("nested"), constraints: { id: requirement }, format: false
          get "/c/*rest", to: spec.answer("fallback")
        end
        @classifier = Gitlab::Cells::Learn::Classifier.from_rails(@route_set)
        @index_of = @route_set.routes.routes.each_with_index.to_h
      end

      it "compiles the table, reports the construct, and answers as Rails' router" do
        constrained = @classifier.route_definitions.first
        expect(constrained["host_regex"]).to include("source")
        expect(constrained["widenings"].map { |w| w["action"] }).to include(a_string_matching(/Ruby's Regexp/))

        paths = values.flat_map { |v| self.class.paths(v) }
        disagreements = paths.filter_map do |path|
          rails = RoutesRailsOracle.pick(@route_set, "GET", path)
          ours = @classifier.recognize("GET", path)
          want = rails && [@index_of.fetch(rails.route), rails.params.transform_values(&:b)]
          got = ours && [ours.route.index, ours.params.transform_values(&:b)]
          "#{path.inspect}: Rails #{want.inspect}, ours #{got.inspect}" unless want == got
        end
        expect(disagreements).to be_empty, disagreements.join("\n")
        routed = paths.count { |path| RoutesRailsOracle.pick(@route_set, "GET", path)&.route == @route_set.routes.routes.first }
        expect(routed).to be_positive, "Rails routes no path to the constrained route" unless NEVER_MATCHED_IN_JOURNEY.include?(name)
      end

      it "classifies the same paths without raising" do
        values.flat_map { |v| self.class.paths(v) }.each do |path|
          expect(@classifier.learn("GET", path)).to be_a(Gitlab::Cells::Learn::Result)
        end
      end

      it "keeps Ruby's decisions in a dumped and loaded artifact" do
        loaded = Gitlab::Cells::Learn::Classifier.load(@classifier.dump)
        values.flat_map { |v| self.class.paths(v) }.each do |path|
          expect(loaded.recognize("GET", path)&.params).to eq(@classifier.recognize("GET", path)&.params)
        end
      end
    end
  end

  it "gives Rails' surprising parameters for a named group: the group's last repetition, no format" do
    route_set = ActionDispatch::Routing::RouteSet.new
    route_set.draw { get "/p/:id(.:format)", to: ->(_env) { [200, {}, []] }, constraints: { id: /(?<n>ab)+/ } }
    ours = Gitlab::Cells::Learn::Classifier.from_rails(route_set).recognize("GET", "/p/abab.json")
    expect(ours.params).to eq("id" => "ab")
    expect(RoutesRailsOracle.pick(route_set, "GET", "/p/abab.json").params).to eq("id" => "ab")
  end
end
