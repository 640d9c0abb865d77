# frozen_string_literal: true

# A GitLab-shaped monolith for spec/rails_app_differential_spec.rb, booted as GitLab boots:
# railties, eager loading (production), ActiveRecord (SQLite here; PostgreSQL when DATABASE_URL is
# set and the `pg` adapter is installed), URL constrainers that look rows up in the database, a
# Grape API mounted at /, a mounted Rack app, redirects, Devise-like session routes, the learn
# endpoint mounted at /api/v4/cells/learn and the cell middleware installed; served by Puma.
#
# Every endpoint tells what Rails dispatched: controllers in `X-Dispatched: controller#action`,
# the Grape API as `grape:VERB path`, redirects and the mounted Rack app as `route:NAME`; the learn
# endpoint tells the route it named in `X-Learn-Route` (see config/initializers/cells_learn.rb).
require "logger"
require "rails"
require "active_record/railtie"
require "action_controller/railtie"
require "grape"
require "gitlab/cells/learn"

module CellsApp
  class Application < Rails::Application
    config.load_defaults 6.1
    config.root = File.expand_path("..", __dir__)
    config.eager_load = true
    config.cache_classes = true
    config.consider_all_requests_local = false
    config.action_dispatch.show_exceptions = true
    config.secret_key_base = "cells-app-secret-key-base-not-secret"
    config.hosts.clear
    config.logger = Logger.new(ENV.fetch("CELLS_APP_LOG", File::NULL))
    config.log_level = :warn
    config.active_support.deprecation = :silence

    # The learn endpoint and the middleware decide constrained routes with the routes' own
    # constrainer objects, as Rails does (Gitlab::Cells::Learn::RailsConstraints); compiled at boot.
    config.cells_learn.constraints = :rails
    config.cells_learn.artifact = nil
  end
end
