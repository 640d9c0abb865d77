# frozen_string_literal: true

require "rails"
require "action_dispatch"

# RouteSnapshot writes GitLab's config/routing/gitlab_routes.json format.
RSpec.describe Gitlab::Cells::Learn::RouteSnapshot do
  it "reproduces every entry of GitLab's own snapshot from its template" do
    snapshot = JSON.parse(File.read(File.join(CORPUS_DIR, "gitlab-route-templates.json")))
    expect(snapshot.size).to eq(5066)
    rebuilt = snapshot.map { |e| described_class.entry(e["template"], e["acceptsFormat"] == true) }
    expect(rebuilt).to eq(snapshot)
  end

  it "reduces specs to sorted, unique templates, one with a format enough for acceptsFormat" do
    entries = described_class.from_specs(["/b/:id(.:format)", "/a/*path", "/b/:id", "/-/archive/*id.:format", "/x\\(\\)"])
    expect(entries).to eq([
                            { "template" => "/-/archive/*id.:format", "example" => "/-/archive/foo/bar", "acceptsFormat" => true,
                              "dottedExample" => "/-/archive/john.doe/bar" },
                            { "template" => "/a/*path", "example" => "/a/foo/bar", "dottedExample" => "/a/john.doe/bar" },
                            { "template" => "/b/:id", "example" => "/b/foo", "acceptsFormat" => true, "dottedExample" => "/b/john.doe" },
                            { "template" => "/x\\(\\)", "example" => "/x()" }
                          ])
    expect(described_class.from_specs(["/a", "/rails/info"], exclude: %r{\A/rails/}).map { |e| e["template"] }).to eq(["/a"])
  end

  it "writes what Rails drew, Grape's /api/:version pinned in examples" do
    set = ActionDispatch::Routing::RouteSet.new
    set.draw do
      resources :projects, only: :show do
        get "(-/)settings", to: "projects#settings", on: :member
      end
      get "/", to: "root#index"
    end
    entries = described_class.from_rails(set)
    expect(entries.map { |e| e["template"] }).to eq(["/", "/projects/:id", "/projects/:id(/-/)settings"])
    expect(entries.last).to include("example" => "/projects/foo/-/settings", "acceptsFormat" => true)
    expect(described_class.example("/api/:version/groups/:id/(-/)epics")).to eq("/api/v4/groups/foo/-/epics")
  end

  it "refuses unbalanced groups and specs that are not paths" do
    expect { described_class.example("/a(/b") }.to raise_error(ArgumentError, /unbalanced '\('/)
    expect { described_class.example("/a)/b") }.to raise_error(ArgumentError, /unbalanced '\)' at byte 2/)
    expect { described_class.from_specs(["a"]) }.to raise_error(ArgumentError, %r{starting with /})
  end
end
