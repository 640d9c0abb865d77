# frozen_string_literal: true

require "tmpdir"
require "open3"

# `gem build` then `gem install --local` (RubyGems runs extconf.rb, which drives cargo), then a
# fresh Ruby process requires the installed gem and classifies with it: the path a GitLab
# deployment takes, offline from rubygems.org.
RSpec.describe "packaging" do
  it "builds, installs and loads the gem" do
    Dir.mktmpdir("cells-learn-gem") do |dir|
      out, status = Open3.capture2e("gem", "build", "gitlab-cells-learn.gemspec", "--output", File.join(dir, "g.gem"), chdir: REPO_ROOT)
      expect(status).to be_success, out

      home = File.join(dir, "home")
      # Reuse the repository's cargo target dir so the test does not rebuild every dependency.
      # `--install-dir` hides the system's gems from the resolver, so the dependency (rack) is not
      # resolved at install time; the load below proves Debian's rack satisfies it at run time.
      gem_path = [home, *Gem.path].join(File::PATH_SEPARATOR)
      env = { "CARGO_TARGET_DIR" => File.join(REPO_ROOT, "target"), "GEM_PATH" => gem_path }
      out, status = Open3.capture2e(env, "gem", "install", "--local", "--no-document", "--ignore-dependencies", "--install-dir", home, File.join(dir, "g.gem"))
      expect(status).to be_success, out

      script = <<~RUBY
        require "gitlab/cells/learn"
        native = $LOADED_FEATURES.grep(/gitlab_cells_learn/).first
        abort "loaded the development build \#{native}" if native.start_with?(#{REPO_ROOT.dump})
        c = Gitlab::Cells::Learn::Classifier.new(routes: [{ "verb" => "GET", "path" => "/*namespace_id/:project_id(.:format)" }])
        puts JSON.generate(c.learn("GET", "/gitlab-org/gitlab").to_h(cell: "cell_1"))
      RUBY
      clean_env = { "GEM_HOME" => home, "GEM_PATH" => gem_path, "RUBYLIB" => nil, "RUBYOPT" => nil }
      out, status = Open3.capture2e(clean_env, RbConfig.ruby, "-e", script, chdir: dir)
      expect(status).to be_success, out
      expect(JSON.parse(out.lines.last)).to eq("path" => "/gitlab-org/gitlab", "cell" => "cell_1", "source" => "routable")
    end
  end
end
