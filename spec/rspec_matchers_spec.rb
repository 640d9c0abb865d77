# frozen_string_literal: true

require "spec_helper"
require "gitlab/cells/learn/rspec"
require "open3"
require "tmpdir"

RSpec.describe Gitlab::Cells::Learn::RSpec::Matchers do
  def not_met = RSpec::Expectations::ExpectationNotMetError

  let(:classifier) { Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlabish-routes.json"))) }
  # GitLab's rules without the fixed rule for /help: /help then matches a route no rule covers.
  let(:no_help) do
    rules = classifier.rules
    rules["fixed"].reject! { |f| f["path"] == "/help" }
    Gitlab::Cells::Learn::Classifier.new(routes: File.read(File.join(CORPUS_DIR, "gitlabish-routes.json")), rules: rules)
  end
  let(:issues_route) { "#118 GET /*namespace_id/:project_id/-/issues(.:format) (projects/issues#index)" }

  # A group route behind a dynamic constraint (GroupUrlConstrainer), then a catch-all.
  let(:dynamic) do
    Gitlab::Cells::Learn::Classifier.new(routes: [
                                           { "verb" => "GET", "path" => "/groups/*id(.:format)", "defaults" => { "controller" => "groups", "action" => "show" },
                                             "dynamic_constraints" => true },
                                           { "verb" => "GET", "path" => "/:username/*rest", "defaults" => { "controller" => "users", "action" => "unmatched" } }
                                         ])
  end

  it "is included into example groups" do
    expect(self.class.ancestors).to include(described_class)
    expect(learn(:get, "/")).to be_a(Gitlab::Cells::Learn::RSpec::LearnMatcher)
    expect(recognize(:get, "/")).to be_a(Gitlab::Cells::Learn::RSpec::RecognizeMatcher)
  end

  describe "learn(...).as_routable" do
    it "passes for the routable prefix, entity, route and params" do
      expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").as_routable("/gitlab-org/gitlab")
      expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").as_routable
                                                                      .with_entity(:route_path, "gitlab-org/gitlab").with_route("projects/issues#index")
                                                                      .with_params("namespace_id" => "gitlab-org", project_id: "gitlab")
      expect(classifier).to learn("GET", "/groups/a/b/-/labels").as_routable("/groups/a/b").with_entity(:route_path)
      expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues")
        .with_route("/*namespace_id/:project_id/-/issues(.:format)")
    end

    it "fails showing the result, the route Rails matched, its params and the difference" do
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").as_routable("/gitlab-org") }
        .to raise_error(not_met, Regexp.new([
          Regexp.escape('expected GET "/gitlab-org/gitlab/-/issues" to be classified as routable "/gitlab-org"'),
          "but it was classified:", "  source:    routable", '  path:      "/gitlab-org/gitlab"', "  exact:     false",
          "  cacheable: true", '  entity:    route_path:"gitlab-org/gitlab"',
          Regexp.escape("Rails would match: #{issues_route}"),
          Regexp.escape('  params: {"namespace_id"=>"gitlab-org", "project_id"=>"gitlab"}')
        ].join("\n")))
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").as_routable("/gitlab-org") }
        .to raise_error(not_met, %r{why:\n  - path: expected "/gitlab-org", got "/gitlab-org/gitlab"\z})
    end

    it "fails with the reason when nothing routes the request" do
      expect { expect(classifier).to learn(:get, "/api/v4/projects/1").as_routable }
        .to raise_error(not_met,
                        /source:    default \(reason: no_route: no route matches.*Rails would match: no route.*why:\n  - source: expected :routable, got :default \(no_route: /m)
      expect { expect(no_help).to learn(:get, "/help.json").as_routable }
        .to raise_error(not_met,
                        %r{Rails would match: #67 GET /help\(\.:format\) \(help#index\)\n  params: \{"format"=>"json"\}.*got :default \(no_rule: a route matches, but no fixed rule covers}m)
    end

    it "fails on the entity kind or key" do
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").as_routable.with_entity(:project_id) }
        .to raise_error(not_met, %r{entity: expected project_id:\*, got route_path:"gitlab-org/gitlab"})
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").with_entity(:route_path, "gitlab-org") }
        .to raise_error(not_met, %r{with entity route_path:"gitlab-org".*entity: expected route_path:"gitlab-org", got route_path:"gitlab-org/gitlab"}m)
      expect { expect(classifier).to learn(:get, "/-/profile").with_entity(:route_path) }
        .to raise_error(not_met, /entity: expected route_path:\*, got none \(only routable results have one\)/)
    end

    it "fails on the route and on the params" do
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").with_route("projects/issues#show") }
        .to raise_error(not_met, %r{route: expected "projects/issues#show", got #{Regexp.escape(issues_route)}})
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab/-/issues").with_params("project_id" => "other", "x" => "1") }
        .to raise_error(not_met,
                        /params: expected to include \{"project_id"=>"other", "x"=>"1"\}, got \{"namespace_id"=>"gitlab-org", "project_id"=>"gitlab"\} \(differs: project_id => "gitlab", x => absent\)/)
      expect { expect(classifier).to learn(:get, "/api/v4/x").with_params("id" => "1") }
        .to raise_error(not_met, /params: expected \{"id"=>"1"\}, but no route matches/)
    end
  end

  describe "learn(...).as_fixed" do
    it "passes for the cell, exact paths and uncacheable answers" do
      expect(classifier).to learn(:get, "/-/profile").as_fixed("cell_0").exactly
      expect(classifier).to learn(:get, "/-/profile/keys").as_fixed("cell_0").as_prefix
      expect(classifier).to learn(:get, "/").as_fixed.exactly.as_uncacheable
      expect(classifier).to learn(:get, "/").as_fixed(nil)           # the rule names no cell
      expect(classifier).to learn(:get, "/").as_fixed("cell_0")      # ...which is the default cell
      expect(classifier).to learn(:get, "/dashboard/projects").as_fixed.as_uncacheable
      expect(classifier).to learn(:get, "/users/sign_in").as_fixed("cell_0").as_cacheable
    end

    it "fails on the cell" do
      expect { expect(classifier).to learn(:get, "/-/profile").as_fixed("cell_1") }
        .to raise_error(not_met, /to be classified as fixed to cell "cell_1".*  cell:      "cell_0".*why:\n  - cell: expected "cell_1", got "cell_0"/m)
      expect { expect(classifier).to learn(:get, "/").as_fixed("cell_1") }
        .to raise_error(not_met, /cell: expected "cell_1", got nil \(the rule names no cell: the default cell, "cell_0"\)/)
      expect { expect(classifier).to learn(:get, "/-/profile").as_fixed(nil) }
        .to raise_error(not_met, /cell: expected nil, got "cell_0"/)
    end

    it "fails on exactness, cacheability and source" do
      expect { expect(classifier).to learn(:get, "/-/profile/keys").as_fixed("cell_0").exactly }
        .to raise_error(not_met,
                        %r{path:      "/-/profile".*Rails would match: #9 GET /-/profile/keys\(\.:format\) \(keys#index\).*why:\n  - exact: expected true, got false\z}m)
      expect { expect(classifier).to learn(:get, "/-/profile").as_uncacheable }
        .to raise_error(not_met, /cacheable: expected false, got true/)
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab").as_fixed("cell_0") }
        .to raise_error(not_met, /why:\n  - source: expected :fixed, got :routable\z/)
    end
  end

  describe "learn(...).as_default" do
    it "passes for unknown routes and routes no rule covers" do
      expect(classifier).to learn(:get, "/api/v4/projects/1").as_default.as_uncacheable
      expect(classifier).to learn(:get, "/api/v4/projects/1").as_default(:no_route)
      expect(no_help).to learn(:get, "/help.json").as_default(:no_rule).with_route("help#index").exactly
      expect(classifier).to learn(:get, "/help.json").as_fixed.exactly
    end

    it "fails on the source and the reason" do
      expect { expect(classifier).to learn(:get, "/gitlab-org/gitlab").as_default }
        .to raise_error(not_met, /source: expected :default, got :routable/)
      expect { expect(no_help).to learn(:get, "/help.json").as_default(:no_route) }
        .to raise_error(not_met, /reason: expected :no_route, got :no_rule \(a route matches, but no fixed rule/)
    end

    it "refuses an unknown reason" do
      expect { learn(:get, "/").as_default(:nope) }.to raise_error(ArgumentError, /:no_route, :no_rule/)
    end
  end

  describe "negated learn" do
    it "passes when any expectation differs" do
      expect(classifier).not_to learn(:get, "/").as_routable
      expect(classifier).not_to learn(:get, "/-/profile").as_fixed("cell_1")
    end

    it "fails showing what happened" do
      expect { expect(classifier).not_to learn(:get, "/").as_fixed.exactly.as_uncacheable }
        .to raise_error(not_met, Regexp.new(Regexp.escape(<<~MSG.chomp)))
          expected GET "/" not to be classified as fixed exactly uncacheable
          but it was classified:
            source:    fixed
            path:      "/"
            exact:     true
            cacheable: false
            entity:    none
            cell:      nil (the default cell, "cell_0")
          Rails would match: #0 GET / (root#index)
            params: {}
        MSG
    end
  end

  describe "learn with dynamic constraints" do
    it "passes the constraint to the classifier and to the route Rails would match" do
      seen = []
      expect(dynamic).to learn(:get, "/groups/acme").with_constraints { |route, params|
                           seen << [route.endpoint, params]
                           true
                         }
                                                    .as_routable("/groups/acme").with_route("groups#show").with_params("id" => "acme")
      expect(seen).to include(["groups#show", { "id" => "acme" }])
      expect(dynamic).to learn(:get, "/groups/acme") { |_route, _params| false }
        .as_routable("/groups").with_entity(:route_path, "groups").with_route("users#unmatched")
    end

    it "fails naming the route the constraint rejected" do
      expect { expect(dynamic).to learn(:get, "/groups/acme").with_constraints { false }.with_route("groups#show") }
        .to raise_error(not_met,
                        %r{Rails would match: #1 GET /:username/\*rest \(users#unmatched\)\n  params: \{"username"=>"groups", "rest"=>"acme"\}\n  other routes that match structurally \(later in Rails order, or rejected by a constraint\):\n    #0 GET /groups/\*id\(\.:format\) \(groups#show\) params: \{"id"=>"acme"\}})
    end

    it "needs a block" do
      expect { learn(:get, "/").with_constraints }.to raise_error(ArgumentError, /needs a block/)
    end
  end

  describe "learn misuse" do
    it "refuses an expectation-free matcher, conflicting sources and non-classifiers" do
      expect { expect(classifier).to learn(:get, "/") }.to raise_error(ArgumentError, /expects nothing: chain as_routable/)
      expect { learn(:get, "/").as_routable.as_fixed }.to raise_error(ArgumentError, /already expects a routable result/)
      expect { expect("classifier").to learn(:get, "/").as_fixed }.to raise_error(ArgumentError, /expected a Gitlab::Cells::Learn::Classifier/)
      expect { learn(:get, "/").with_params("x") }.to raise_error(ArgumentError, /with_params needs a Hash/)
      expect { expect(classifier).to learn(:get, 42).as_fixed }.to raise_error(Gitlab::Cells::Learn::InvalidRequestError)
    end
  end

  describe "recognize" do
    it "passes for the route by endpoint or spec, and its params" do
      expect(classifier).to recognize(:get, "/help")
      expect(classifier).to recognize(:get, "/help").as("help#index")
      expect(classifier).to recognize(:get, "/help.json").as("/help(.:format)").with_params("format" => "json")
      expect(classifier).not_to recognize(:post, "/help")
      expect(classifier).not_to recognize(:get, "/help").as("search#show")
    end

    it "fails showing what Rails would match" do
      expect { expect(classifier).to recognize(:post, "/help") }
        .to raise_error(not_met, %r{expected POST "/help" to be recognized\nRails would match: no route\nwhy:\n  - no route matches POST "/help"\z})
      expect { expect(classifier).to recognize(:get, "/help").as("search#show") }
        .to raise_error(not_met,
                        %r{to be recognized as "search#show"\nRails would match: #67 GET /help\(\.:format\) \(help#index\)\n  params: \{\}.*why:\n  - route: expected "search#show", got #67 GET /help}m)
      expect { expect(classifier).to recognize(:get, "/help.json").with_params("format" => "xml") }
        .to raise_error(not_met, /params: expected to include \{"format"=>"xml"\}, got \{"format"=>"json"\}/)
    end

    it "fails when negated, showing the route" do
      expect { expect(classifier).not_to recognize(:get, "/help") }
        .to raise_error(not_met, %r{expected GET "/help" not to be recognized\nRails would match: #67 GET /help\(\.:format\) \(help#index\)\n  params: \{\}})
      expect { expect(classifier).not_to recognize(:get, "/help").as("help#index") }
        .to raise_error(not_met, /not to be recognized as "help#index"/)
      expect { expect(classifier).not_to recognize(:get, "/help").with_params("a" => "b") }.to raise_error(ArgumentError, /ambiguous/)
    end

    it "applies dynamic constraints" do
      expect(dynamic).to recognize(:get, "/groups/acme").as("groups#show")
      expect(dynamic).to recognize(:get, "/groups/acme") { false }.as("users#unmatched")
      expect { expect(dynamic).to recognize(:get, "/groups/acme").with_constraints { false }.as("groups#show") }
        .to raise_error(not_met, %r{route: expected "groups#show", got #1 GET /:username/\*rest})
    end
  end

  describe "descriptions" do
    it "describes each chain" do
      expect(learn(:get, "/gitlab-org/gitlab/-/issues").as_routable("/gitlab-org/gitlab").with_entity(:route_path, "gitlab-org/gitlab").description)
        .to eq('learn GET "/gitlab-org/gitlab/-/issues" as routable "/gitlab-org/gitlab" with entity route_path:"gitlab-org/gitlab"')
      expect(learn(:get, "/").as_fixed("cell_0").exactly.as_uncacheable.description)
        .to eq('learn GET "/" as fixed to cell "cell_0" exactly uncacheable')
      expect(learn(:post, "/x").as_default(:no_route).with_route("a#b").with_params("id" => 1).description)
        .to eq('learn POST "/x" as default (no_route) with route "a#b" with params {"id"=>"1"}')
      expect(recognize(:get, "/help").as("help#index").description).to eq('recognize GET "/help" as "help#index"')
    end

    it "shows in documentation output, loaded on its own" do
      Dir.mktmpdir do |dir|
        spec = File.join(dir, "doc_spec.rb")
        File.write(spec, <<~RUBY)
          require "gitlab/cells/learn/rspec"
          RSpec.describe "routes" do
            subject { Gitlab::Cells::Learn::Classifier.new(routes: File.read(#{File.join(CORPUS_DIR, "gitlabish-routes.json").inspect})) }
            it { is_expected.to learn(:get, "/-/profile").as_fixed("cell_0").exactly }
            it { is_expected.to recognize(:get, "/help").as("help#index") }
            it { is_expected.to learn(:get, "/help.json").as_routable }
          end
        RUBY
        out, _err, status = Open3.capture3("rspec", "-I", File.join(REPO_ROOT, "lib"), "--format", "documentation", spec)
        expect(status).not_to be_success
        expect(out).to include('is expected to learn GET "/-/profile" as fixed to cell "cell_0" exactly')
        expect(out).to include('is expected to recognize GET "/help" as "help#index"')
        expect(out).to include("3 examples, 1 failure")
        expect(out).to match(/source: expected :routable, got :fixed/)
      end
    end
  end
end
