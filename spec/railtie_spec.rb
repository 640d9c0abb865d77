# frozen_string_literal: true

require "open3"
require "tmpdir"
require "fileutils"

# The monolith's boot and build, in a real railties Rails::Application (spec/fixtures/rails_app:
# routes with a URL constrainer, a redirect, a mounted Rack app, a Grape API and the learn
# endpoint), each step in its own process as a build or a server would run it.
RAILTIE_FIXTURE_APP = File.expand_path("fixtures/rails_app", __dir__)

RSpec.describe "Gitlab::Cells::Learn::Railtie in a Rails application" do
  around do |example|
    Dir.mktmpdir("cells-rails-app") do |dir|
      @root = File.join(dir, "app")
      FileUtils.cp_r(RAILTIE_FIXTURE_APP, @root)
      FileUtils.mkdir_p(File.join(@root, "log"))
      example.run
    end
  end

  let(:env) { { "RUBYLIB" => File.join(REPO_ROOT, "lib"), "CELLS_LOG" => File.join(@root, "log", "cells.log"), "RAILS_ENV" => nil } }

  def rake(*args)
    out, status = Open3.capture2e(env, "rake", *args, chdir: @root)
    [out, status]
  end

  # Runs Ruby in the booted application; the script prints one JSON document last.
  def in_app(script, extra_env = {})
    code = "require './config/environment'\n#{script}"
    out, status = Open3.capture2e(env.merge(extra_env), RbConfig.ruby, "-e", code, chdir: @root)
    raise "the application script failed (#{status.exitstatus}):\n#{out}" unless status.success?

    JSON.parse(out.lines.last)
  end

  def cells_log
    path = File.join(@root, "log", "cells.log")
    File.exist?(path) ? File.read(path) : ""
  end

  def add_route(line)
    routes = File.join(@root, "config", "routes.rb")
    File.write(routes, File.read(routes).sub("Rails.application.routes.draw do\n", "Rails.application.routes.draw do\n  #{line}\n"))
  end

  it "gives the application the gem's rake tasks" do
    out, status = rake("-T", "cells")
    expect(status).to be_success, out
    %w[cells:compile cells:routes:export cells:verify cells:coverage].each { |task| expect(out).to include("rake #{task}") }
  end

  it "compiles the artifact at build time, and boot loads it while the routes' digest matches" do
    out, status = rake("cells:compile")
    expect(status).to be_success, out
    artifact = File.join(@root, "tmp/cells/classifier.cells-learn")
    header = File.binread(artifact).lines.first
    expect(header).to match(/\A#{Regexp.escape(Gitlab::Cells::Learn::RailsClassifier::MAGIC)} \h{64}\n\z/)
    digest = header.split.last
    expect(out).to include(digest)

    booted = in_app(<<~RUBY)
      holder = Gitlab::Cells::Learn::Railtie.classifier
      holder.load!
      extracted = Gitlab::Cells::Learn::RailsRoutes.extract(Rails.application.routes)
      puts JSON.generate("digest" => holder.digest, "routes" => holder.routes.map(&:spec), "extracted" => extracted.map { |r| r["path"] },
                         "show" => holder.recognize("GET", "/projects/42").route.endpoint)
    RUBY
    expect(booted["digest"]).to eq(digest)
    expect(booted["routes"]).to eq(booted["extracted"])
    expect(booted["show"]).to eq("projects#show")
    expect(cells_log).not_to include("WARN")

    # Loaded, not recompiled: an artifact whose digest matches is trusted as it is, so a body
    # from another table (one route) shows through.
    one_route = Gitlab::Cells::Learn::Classifier.new(routes: [{ "verb" => "GET", "path" => "/only(.:format)" }])
    File.binwrite(artifact, "#{header}#{one_route.dump}")
    loaded = in_app("puts JSON.generate('routes' => Gitlab::Cells::Learn::Railtie.classifier.routes.map(&:spec))")
    expect(loaded["routes"]).to eq(["/only(.:format)"])
  end

  it "recompiles with a warning when the routes no longer match the artifact, or it is corrupt or missing" do
    _, status = rake("cells:compile")
    expect(status).to be_success
    add_route('get "/-/cells-new", to: "help#index"')
    booted = in_app("h = Gitlab::Cells::Learn::Railtie.classifier; puts JSON.generate('new' => h.recognize('GET', '/-/cells-new')&.route&.endpoint)")
    expect(booted["new"]).to eq("help#index")
    expect(cells_log).to match(/WARN \[gitlab-cells-learn\] the artifact .* was compiled from other routes or rules .*recompiling/)

    File.binwrite(File.join(@root, "tmp/cells/classifier.cells-learn"), "not an artifact")
    FileUtils.rm_f(File.join(@root, "log", "cells.log"))
    booted = in_app("puts JSON.generate('new' => Gitlab::Cells::Learn::Railtie.classifier.recognize('GET', '/-/cells-new')&.route&.endpoint)")
    expect(booted["new"]).to eq("help#index")
    expect(cells_log).to include("is not a Rails classifier artifact")

    FileUtils.rm_f(File.join(@root, "tmp/cells/classifier.cells-learn"))
    in_app("Gitlab::Cells::Learn::Railtie.classifier.load!; puts '{}'")
    expect(cells_log).to include("no artifact at #{File.join(@root, "tmp/cells/classifier.cells-learn")}")
  end

  it "rebuilds in development when the routes reload" do
    result = in_app(<<~RUBY)
      holder = Gitlab::Cells::Learn::Railtie.classifier
      before = holder.recognize("GET", "/-/cells-new")&.route&.endpoint
      digest = holder.digest
      routes = Rails.root.join("config/routes.rb")
      routes.write(routes.read.sub("draw do\\n", "draw do\\n  get '/-/cells-new', to: 'help#index'\\n"))
      # What Rails' reloader does for a request after a file changed: the routes reloader runs,
      # then the to_prepare callbacks.
      Rails.application.reloader.reload!
      after = holder.recognize("GET", "/-/cells-new")&.route&.endpoint
      puts JSON.generate("before" => before, "after" => after, "changed" => holder.digest != digest)
    RUBY
    expect(result).to eq("before" => nil, "after" => "help#index", "changed" => true)
    expect(cells_log).to match(/INFO \[gitlab-cells-learn\] the routes changed \(\h{12} -> \h{12}\): recompiled/)
  end

  it "exports GitLab's route snapshot, whose examples the classifier matches to their own template" do
    out, status = rake("cells:routes:export")
    expect(status).to be_success, out
    snapshot = JSON.parse(File.read(File.join(@root, "config/routing/gitlab_routes.json")))
    expect(snapshot.map { |e| e["template"] }).to eq(snapshot.map { |e| e["template"] }.sort.uniq)
    expect(snapshot.flat_map(&:keys).uniq - %w[template example acceptsFormat dottedExample]).to be_empty
    expect(snapshot).to include({ "template" => "/projects/:project_id/issues/:id", "example" => "/projects/foo/issues/foo",
                                  "acceptsFormat" => true, "dottedExample" => "/projects/john.doe/issues/john.doe" },
                                { "template" => "/api/:version/projects/:id", "example" => "/api/v4/projects/foo",
                                  "acceptsFormat" => true, "dottedExample" => "/api/v4/projects/john.doe" })

    # Read back as cells-learn reads a snapshot (src/templates.rs): any verb, `(.:format)` when accepted.
    table = snapshot.map do |e|
      path = e["acceptsFormat"] && !e["template"].include?(":format") ? "#{e["template"]}(.:format)" : e["template"]
      { "verb" => "", "path" => path }
    end
    classifier = Gitlab::Cells::Learn::Classifier.new(routes: table)
    # (Dotted examples are adversarial: Grape's default `[^/?#.]+` refuses `john.doe`, as it should.)
    snapshot.each_with_index do |entry, i|
      expect(classifier.matches("GET", entry["example"]).map { |m| m.route.index }).to include(i), entry["template"]
    end

    out, status = rake("cells:routes:export[tmp/elsewhere.json]")
    expect(status).to be_success, out
    expect(JSON.parse(File.read(File.join(@root, "tmp/elsewhere.json")))).to eq(snapshot)
  end

  it "replays the logs of requests the application served: cells:verify names the controller#action and Grape route that ran" do
    requests = %w[/ /projects /projects/7 /projects/7/issues /projects/7/issues/3.json /groups/g1 /groups/missing-1 /alice
                  /al.ice /help /help/docs /-/monitor/x /api/v4/projects /api/v4/projects/5 /api/v4/projects/5/issues
                  /api/v4/projects/5/issues.json /nope/nope]
    served = in_app(<<~RUBY)
      app = Rack::MockRequest.new(Rails.application)
      statuses = #{requests.inspect}.to_h { |path| [path, app.get(path).status] }
      puts JSON.generate(statuses)
    RUBY
    expect(served.values).to include(200, 301, 404)
    logs = %w[production_json.log api_json.log].map { |name| File.join(@root, "log", name) }
    served_lines = logs.sum { |log| File.readlines(log).size }
    expect(served_lines).to eq(served.count { |path, status| status == 200 && !path.start_with?("/-/monitor") })

    out, status = rake("cells:verify[log/production_json.log,log/api_json.log]")
    expect(status).to be_success, out
    production = File.readlines(logs[0]).size
    api = File.readlines(logs[1]).size
    expect(out).to include("#{production}/#{production} requests name the route that served")
    expect(out).to include("#{api}/#{api} requests name the route that served")

    # `/:username` is drawn before `/help`: Rails served /help with users#show, and the log says so.
    expect(File.readlines(logs[0]).map { |l| JSON.parse(l).values_at("path", "controller") }).to include(["/help", "UsersController"])

    # A line from another deployment (the path served by another action): listed as a difference.
    File.open(logs[0], "a") do |f|
      f.puts JSON.generate("method" => "GET", "path" => "/projects?x=1", "controller" => "Projects::SettingsController", "action" => "edit")
    end
    out, status = rake("cells:verify[log/production_json.log]")
    expect(status.exitstatus).to eq(1)
    expect(out).to include("#{production}/#{production + 1} requests name the route that served")
    expect(out).to include("differs: line #{production + 1}: GET /projects: served by projects/settings#edit, the classifier names projects#index")
  end

  it "publishes learn.gitlab_cells for each learn answer the mounted endpoint gives" do
    events = in_app(<<~RUBY)
      events = []
      ActiveSupport::Notifications.subscribe("learn.gitlab_cells") { |*args| events << ActiveSupport::Notifications::Event.new(*args) }
      app = Rack::MockRequest.new(Rails.application)
      answers = ["/projects/eu-1/issues", "/api/v4/projects/5", "/nope/nope"].map do |path|
        JSON.parse(app.get("/api/v4/cells/learn", params: { "method" => "GET", "path_info" => path }).body)
      end
      app.get("/api/v4/cells/learn?method=GET")
      puts JSON.generate("answers" => answers, "events" => events.map { |e| e.payload.merge(duration: e.duration).transform_values { |v| v.is_a?(Exception) ? v.class.name : v } })
    RUBY
    answers = events["answers"]
    expect(events["events"].size).to eq(3) # the request missing path_info is refused before any answer
    events["events"].zip(answers).each do |payload, answer|
      expect(payload.slice("source", "cell", "path", "cacheable")).to eq(answer.slice("source", "cell", "path", "cacheable"))
      expect(payload["duration"]).to be_a(Float).and be >= 0
    end
    expect(events["events"].map { |e| e["path_info"] }).to eq(["/projects/eu-1/issues", "/api/v4/projects/5", "/nope/nope"])
    expect(events["events"].first["route"]).to include("issues#index")
  end

  it "decides dynamic constraints with the application's own constraint objects (config.cells_learn.constraints = :rails)" do
    script = <<~RUBY
      holder = Gitlab::Cells::Learn::Railtie.classifier
      app = Rack::MockRequest.new(Rails.application)
      paths = %w[/groups/g1 /groups/missing-1 /groups/eu-2]
      named = paths.to_h { |path| [path, holder.recognize("GET", path)&.route&.endpoint] }
      served = paths.to_h { |path| r = app.get(path); [path, r.status == 200 ? r.body : nil] }
      puts JSON.generate("named" => named, "served" => served)
    RUBY
    rails = in_app(script, "CELLS_CONSTRAINTS" => "rails")
    expect(rails["served"]).to eq("/groups/g1" => "groups#show", "/groups/missing-1" => nil, "/groups/eu-2" => "groups#show")
    expect(rails["named"]).to eq(rails["served"])
    # The artifact path too: compiled, then loaded with the constraints of the routes drawn at boot.
    _, status = rake("cells:compile")
    expect(status).to be_success
    FileUtils.rm_f(File.join(@root, "log", "cells.log"))
    expect(in_app(script, "CELLS_CONSTRAINTS" => "rails")["named"]).to eq(rails["served"])
    expect(cells_log).not_to include("WARN")
    # Without it, every dynamic route holds unless the integrator's block says otherwise.
    expect(in_app(script)["named"]["/groups/missing-1"]).to eq("groups#show")
  end
end
