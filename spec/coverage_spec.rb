# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rexml/document"
require "tmpdir"

RSpec.describe Gitlab::Cells::Learn::Coverage do
  def route(verb, path, endpoint = nil, **extra)
    controller, action = endpoint&.split("#", 2)
    defaults = controller ? { "controller" => controller, "action" => action } : {}
    { "verb" => verb, "path" => path, "defaults" => defaults }.merge(extra.transform_keys(&:to_s))
  end

  # A small table whose classes are known by reading it against rules/gitlab.json.
  let(:small_table) do
    [
      route("GET", "/", "root#index"),                                         # 0 fixed (exact "/")
      route("GET", "/-/profile(.:format)", "profiles#show"),                   # 1 fixed ("/-/profile.json" exactly)
      route("GET", "/-/profile/keys/:id(.:format)", "keys#show"),              # 2 fixed (prefix "/-/profile")
      route("GET", "/help(-:topic)(.:format)", "help#index"),                  # 3 fixed, partial ("/help-x")
      route("GET", "/helpers/:id(.:format)", "helpers#show"),                  # 4 unclassified: "/help" is no segment of it
      route("GET", "/legacy/:id(.:format)", "legacy#show",                     # 5 unclassified, fallback
            requirements: { "id" => { "source" => "(?!new)[a-z]{1,20}", "options" => 0 } }),
      route("POST", "/legacy/:id/move", "legacy#move"),                        # 6 unclassified
      route("GET", "/-/health", "health#show"),                                # 7 unclassified
      route("POST", "/api/graphql", "graphql#execute"),                        # 8 fixed (exact "/api/graphql")
      route("GET", "/api/graphql/:schema", "graphql#schema"),                  # 9 unclassified: the rule is exact
      route("GET", "/api/:version/projects(.:format)", "api/projects#index"),  # 10 unclassified: no :id
      route("GET", "/api/:version/projects/:id/issues(.:format)", "api/issues#index"), # 11 routable
      route("GET", "/groups/*id(.:format)", "groups#show", dynamic_constraints: true), # 12 routable, dynamic
      route("GET", "/*namespace_id/:project_id/-/issues(.:format)", "projects/issues#index"), # 13 routable
      route("", "/rack_app", nil, mounted: true), # 14 unclassified, mounted
      route("GET", "/:username(.:format)", "users#show", dynamic_constraints: true) # 15 routable, dynamic
    ]
  end
  let(:small) { Gitlab::Cells::Learn::Classifier.new(routes: small_table) }
  let(:coverage) { described_class.new(small) }

  describe "on a table with known answers" do
    it "classifies every route" do
      klasses = coverage.entries.map(&:klass)
      expect(klasses).to eq(%i[fixed fixed fixed fixed unclassified unclassified unclassified unclassified
                               fixed unclassified unclassified routable routable routable unclassified routable])
      expect(coverage.entries.map { |e| e.route.index }).to eq((0...small_table.size).to_a)
    end

    it "names the rule that classifies each route" do
      expect(coverage.entries[0].rule).to include("path" => "/", "exact" => true)
      expect(coverage.entries[2].rule).to include("path" => "/-/profile", "exact" => false)
      expect(coverage.entries[8].rule).to include("path" => "/api/graphql", "exact" => true)
      expect(coverage.entries[11].rule).to include("spec_prefix" => "/api/:version/projects/:id")
      expect(coverage.entries[12].rule).to include("spec_prefix" => "/groups/*id")
      expect(coverage.entries[15].rule).to include("spec_prefix" => "/:username")
      expect(coverage.unclassified.map(&:rule)).to all(be_nil)
    end

    it "flags dynamic, fallback, mounted and partially fixed routes" do
      expect(coverage.dynamic.map { |e| e.route.index }).to eq([12, 15])
      expect(coverage.entries.select(&:dynamic?)).to eq(coverage.dynamic)
      fallback = coverage.fallback.map { |e| e.route.index }
      expect(fallback).to include(5)
      expect(fallback).not_to include(0, 6, 7, 13)
      expect(coverage.entries[5].widenings.map { |w| w["construct"] }).to include("negative look-ahead")
      expect(coverage.entries[5].widenings).to all(include("construct", "action"))
      expect(coverage.entries[14]).to be_mounted
      expect(coverage.entries[14].controller).to eq("(mounted app)")
      expect(coverage.partial.map { |e| e.route.index }).to eq([3])
    end

    it "counts by class" do
      s = coverage.summary
      expect(s).to include(routable: 4, fixed: 5, unclassified: 7, dynamic: 2, total: 16)
      expect(s[:fallback]).to eq(coverage.fallback.size)
      expect(s[:routable] + s[:fixed] + s[:unclassified]).to eq(s[:total])
    end

    it "lists unclassified routes grouped by controller" do
      grouped = coverage.by_controller(coverage.unclassified)
      expect(grouped.keys).to eq(["(mounted app)", "api/projects", "graphql", "health", "helpers", "legacy"])
      expect(grouped["legacy"].map { |e| e.route.endpoint }).to eq(%w[legacy#show legacy#move])
      expect(coverage.by_controller.values.sum(&:size)).to eq(small_table.size)
    end

    it "agrees with classify on requests generated from each route" do
      agreement(small, coverage, small_table)
    end

    it "follows custom rules" do
      rules = { "default_cell" => "c1", "fixed" => [{ "path" => "/legacy", "cell" => "c2" }],
                "routable" => [{ "spec_prefix" => "/api/:version/projects", "params" => ["id"], "claim" => "project_id" }] }
      cov = described_class.new(Gitlab::Cells::Learn::Classifier.new(routes: small_table, rules: rules))
      expect(cov.entries.values_at(5, 6).map(&:klass)).to eq(%i[fixed fixed])
      expect(cov.entries[10].klass).to eq(:unclassified) # the rule's :id is not a parameter of the route
      expect(cov.entries[11].klass).to eq(:routable)
      expect(cov.entries[0].klass).to eq(:unclassified) # no "/" rule any more
      expect(cov.summary[:total]).to eq(small_table.size)
    end

    it "writes a text report" do
      text = coverage.to_text
      expect(text).to include("Routes: 16", "routable          4", "unclassified      7")
      expect(text).to include("  legacy (2)\n    #5 GET /legacy/:id(.:format) (legacy#show)\n    #6 POST /legacy/:id/move (legacy#move)")
      expect(text).to include("#12 GET /groups/*id(.:format) (groups#show)")
      expect(text).to match(/^\s+\d+  negative look-ahead$/)
    end

    it "writes a self-contained HTML report with an SVG chart" do
      html = coverage.to_html
      expect(html).to start_with("<!DOCTYPE html>")
      expect(html).not_to match(/<(script|link|img)\b/)
      svg = html[%r{<svg\b.*?</svg>}m]
      expect(svg).not_to be_nil
      doc = REXML::Document.new(svg)
      expect(doc.root.name).to eq("svg")
      bars = REXML::XPath.match(doc, "//g[@class='bar']").to_h { |g| [g.attributes["data-class"], g.attributes["data-count"].to_i] }
      expect(bars).to eq("routable" => 4, "fixed" => 5, "unclassified" => 7, "dynamic" => 2, "fallback" => coverage.summary[:fallback])
      widths = REXML::XPath.match(doc, "//g[@class='bar']/rect").map { |r| r.attributes["width"].to_i }
      expect(widths.max).to be > 0
      expect(widths[2]).to be > widths[0] # 7 unclassified > 4 routable
      # tables: summary, unclassified by controller, dynamic, fallback
      expect(html).to include("<h3><code>legacy</code> (2)</h3>", "<code>/legacy/:id(.:format)</code>", "negative look-ahead")
      expect(html.scan("<table").size).to eq(html.scan("</table>").size)
      expect(html).to include("<code>/groups/*id(.:format)</code>")
    end

    it "escapes what it prints" do
      table = [route("GET", "/<b>/:id", "x<y#show")]
      html = described_class.new(Gitlab::Cells::Learn::Classifier.new(routes: table)).to_html
      expect(html).to include("/&lt;b&gt;/:id", "x&lt;y#show")
      expect(html).not_to include("<b>")
    end

    it "refuses what is not a classifier" do
      expect { described_class.new("routes") }.to raise_error(ArgumentError, /needs a Gitlab::Cells::Learn::Classifier, not String/)
    end
  end

  # Every route of a class behaves like it: requests that reach a :routable route classify as
  # routable (unless a fixed rule covers that particular path: fixed rules win), :fixed routes as
  # fixed (their uncovered optional forms as default, for partial routes only), :unclassified
  # routes as default with reason :no_rule.
  def agreement(classifier, coverage, table)
    reached = Hash.new { |h, k| h[k] = [] }
    RoutesRequests.for_table(table).each do |req|
      result = classifier.learn(req.method, req.path)
      next unless result.route

      reached[result.route.index] << [req, result]
    end
    checked = 0
    coverage.entries.each do |entry|
      results = reached[entry.route.index]
      next if results.empty?

      checked += 1
      sources = results.map { |_, r| r.source }
      case entry.klass
      when :routable
        expect(sources).to include(:routable), "#{entry.route}: #{sources.tally}"
        results.reject { |_, r| r.routable? }.each do |req, r|
          expect(r.source).to eq(:fixed), "#{entry.route} on #{req.path}: #{r.inspect}"
        end
      when :fixed
        results.reject { |_, r| r.fixed? }.each do |req, r|
          expect(entry).to be_partial, "#{entry.route} on #{req.path}: #{r.inspect}"
          expect(r.reason).to eq(:no_rule)
        end
        expect(sources).to include(:fixed)
      when :unclassified
        results.each do |req, r|
          expect([r.source, r.reason]).to eq(%i[default no_rule]), "#{entry.route} on #{req.path}: #{r.inspect}"
        end
      end
    end
    checked
  end

  describe "on the corpus table" do
    let(:table) { JSON.parse(File.read(File.join(CORPUS_DIR, "gitlabish-routes.json"))) }
    let(:classifier) { Gitlab::Cells::Learn::Classifier.new(routes: table) }
    let(:corpus) { described_class.new(classifier) }

    it "has consistent counts" do
      s = corpus.summary
      expect(s[:total]).to eq(table.size)
      expect(s[:routable] + s[:fixed] + s[:unclassified]).to eq(table.size)
      expect(s[:dynamic]).to eq(table.count { |r| r["dynamic_constraints"] })
      expect(s[:fallback]).to eq(classifier.route_definitions.count { |d| !d["widenings"].empty? })
      expect(s[:routable]).to be > 0
      expect(s[:fixed]).to be > 0
    end

    it "agrees with classify on requests generated from each route" do
      checked = agreement(classifier, corpus, table)
      expect(checked).to be >= table.size - 5 # a few routes are shadowed by earlier ones for every generated path
    end

    it "has every :routable route classify as routable for a request drawn from its own spec" do
      corpus.routable.each do |entry|
        verb = RoutesRequests.route_verbs(entry.route.verb).first
        paths = RoutesRequests::VALUE_SETS.flat_map { |set| RoutesRequests.expand(entry.route.spec, set, "v4") }.uniq
        own = paths.map { |path| classifier.learn(verb, path) }.select { |r| r.route&.index == entry.route.index }
        next if own.empty? # shadowed by an earlier route for every value set

        expect(own.map(&:source)).to include(:routable), entry.route.to_s
      end
    end
  end

  describe "rake cells:coverage" do
    it "prints the summary and writes the HTML report" do
      Dir.mktmpdir do |dir|
        out_file = File.join(REPO_ROOT, "tmp", "cells-coverage.html")
        File.delete(out_file) if File.exist?(out_file)
        env = { "ROUTES" => nil, "RULES" => nil }
        out, err, status = Open3.capture3(env, "rake", "-f", "Rakefile", "cells:coverage", chdir: REPO_ROOT)
        expect(status).to be_success, "#{out}\n#{err}"
        table = JSON.parse(File.read(File.join(CORPUS_DIR, "gitlabish-routes.json")))
        s = described_class.new(Gitlab::Cells::Learn::Classifier.new(routes: table)).summary
        expect(out).to include("Routes: #{table.size}")
        expect(out).to match(/routable\s+#{s[:routable]}\b/).and match(/unclassified\s+#{s[:unclassified]}\b/)
        expect(out).to include(out_file)
        expect(File.read(out_file)).to include("<svg")

        # A table given as an argument, with rules from RULES, written where OUT says.
        routes = File.join(dir, "routes.json")
        File.write(routes, JSON.generate([route("GET", "/legacy/:id", "legacy#show"), route("GET", "/keep/:id", "keep#show")]))
        rules = File.join(dir, "rules.json")
        File.write(rules, JSON.generate("default_cell" => "c1", "fixed" => [{ "path" => "/keep" }]))
        html = File.join(dir, "report.html")
        out, err, status = Open3.capture3({ "RULES" => rules, "OUT" => html }, "rake", "-f", "Rakefile", "cells:coverage[#{routes}]", chdir: REPO_ROOT)
        expect(status).to be_success, "#{out}\n#{err}"
        expect(out).to match(/fixed\s+1\b/).and match(/unclassified\s+1\b/).and include(html)
        expect(File.read(html)).to include("<code>/legacy/:id</code>")
      end
    end

    it "fails with a precise message for a missing table" do
      out, err, status = Open3.capture3({ "ROUTES" => "/nonexistent/routes.json" }, "rake", "-f", "Rakefile", "cells:coverage", chdir: REPO_ROOT)
      expect(status).not_to be_success
      expect(out + err).to include("/nonexistent/routes.json")
      Dir.mktmpdir do |dir|
        rules = File.join(dir, "rules.json")
        File.write(rules, JSON.generate("default_cell" => "a b"))
        out, err, status = Open3.capture3({ "RULES" => rules }, "rake", "-f", "Rakefile", "cells:coverage", chdir: REPO_ROOT)
        expect(status).not_to be_success
        expect(out + err).to include("#{rules}: InvalidRulesError", "default_cell \"a b\" is not a cell name")
      end
    end
  end
end
