# frozen_string_literal: true

require "open3"
require "tmpdir"
require "fileutils"

# `rails generate gitlab:cells:learn:install` in a fresh railties application, then the
# application booted with what it wrote: the learn endpoint answers, the middleware runs.
RSpec.describe "Gitlab::Cells::Learn::InstallGenerator" do
  def write(root, path, text)
    FileUtils.mkdir_p(File.dirname(File.join(root, path)))
    File.write(File.join(root, path), text)
  end

  def ruby_in(root, code)
    out, status = Open3.capture2e({ "RUBYLIB" => File.join(REPO_ROOT, "lib") }, RbConfig.ruby, "-e", code, chdir: root)
    raise "failed (#{status.exitstatus}):\n#{out}" unless status.success?

    out
  end

  it "sets up the endpoint, the middleware and the artifact in an application that had none" do
    Dir.mktmpdir("cells-generator") do |root|
      write(root, "config/application.rb", <<~RUBY)
        require "rails"
        require "action_controller/railtie"
        require "gitlab/cells/learn"

        module Fresh
          class Application < Rails::Application
            config.root = File.expand_path("..", __dir__)
            config.eager_load = false
            config.secret_key_base = "fresh-secret-key-base"
            config.hosts.clear
            config.logger = Logger.new(File::NULL)
          end
        end
      RUBY
      write(root, "config/environment.rb", "require_relative 'application'\nRails.application.initialize!\n")
      write(root, "config/routes.rb", "Rails.application.routes.draw do\n  get '/help', to: 'help#index'\nend\n")

      ruby_in(root, <<~RUBY)
        require "./config/environment"
        require "rails/generators"
        Rails::Generators.invoke("gitlab:cells:learn:install", ["--cell=cell_us", "--quiet"], destination_root: Rails.root.to_s)
      RUBY
      expect(File.read(File.join(root, "config/application.rb"))).to include("config.cells_learn.constraints = :rails")
      expect(File.read(File.join(root, "config/routes.rb"))).to include("mount Gitlab::Cells::Learn::Endpoint.new")
      expect(File.read(File.join(root, "config/initializers/gitlab_cells_learn.rb"))).to include('cell: "cell_us"')

      out = ruby_in(root, <<~RUBY)
        require "./config/environment"
        app = Rack::MockRequest.new(Rails.application)
        learn = app.get("/api/v4/cells/learn", params: { "method" => "GET", "path_info" => "/help" })
        puts JSON.generate("status" => learn.status, "answer" => JSON.parse(learn.body),
                           "middleware" => Rails.application.middleware.map(&:klass).map(&:to_s).include?("Gitlab::Cells::Learn::Middleware"),
                           "constraints" => Gitlab::Cells::Learn::Railtie.classifier.classifier.constraints.class.name)
      RUBY
      result = JSON.parse(out.lines.last)
      expect(result).to include("status" => 200, "middleware" => true, "constraints" => "Gitlab::Cells::Learn::RailsConstraints")
      expect(result["answer"]).to include("cell" => "cell_0")
    end
  end
end
