# frozen_string_literal: true

require_relative "lib/gitlab/cells/learn/version"

Gem::Specification.new do |spec|
  spec.name = "gitlab-cells-learn"
  spec.version = Gitlab::Cells::Learn::VERSION
  spec.authors = ["gitlab-cells-learn developers"]
  spec.summary = "Classifies requests exactly as the Rails router would, for GitLab Cells' learn endpoint"
  spec.description = <<~DESC
    A Rust-backed classifier that compiles a Rails app's routes (and Grape API routes) into a
    DFA and answers the Cells router's pre-flight question: which route, which routable
    entity, which cell. Includes the Rack learn endpoint, a middleware adding
    X-Gitlab-Cell-Cache, RSpec matchers and a coverage report.
  DESC
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.0"
  spec.metadata["rubygems_mfa_required"] = "true"

  # The whole cargo workspace travels with the gem: the binding builds against the core crate,
  # and cargo needs every workspace member's manifest to resolve it.
  spec.files = Dir[
    "README.md", "Cargo.toml", "Cargo.lock", "rules/*.json",
    "src/**/*.rs", "benches/classify.rs",
    "cli/Cargo.toml", "cli/src/**/*.rs",
    "router/Cargo.toml", "router/src/**/*.rs",
    "ext/gitlab_cells_learn/Cargo.toml", "ext/gitlab_cells_learn/extconf.rb", "ext/gitlab_cells_learn/src/**/*.rs",
    "lib/**/*.rb", "lib/**/*.rake", "lib/**/*.tt"
  ]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/gitlab_cells_learn/extconf.rb"]

  # The learn endpoint and the cell middleware are Rack components.
  spec.add_dependency "rack", ">= 2.0", "< 4"
end
