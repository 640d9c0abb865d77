# frozen_string_literal: true

require "rails/generators"

module Gitlab
  module Cells
    module Learn
      # `bin/rails generate gitlab:cells:learn:install`: the setup the README's Rails integration
      # guide describes, written into the application:
      #
      # - config/application.rb: `config.cells_learn.constraints = :rails` (the routes' own
      #   constraint objects decide) and the artifact path;
      # - config/initializers/gitlab_cells_learn.rb: the resolver (answers nil — no cell claims
      #   anything, so every answer is the default cell, uncacheable — until it is written) and
      #   the Middleware;
      # - config/routes.rb: the learn Endpoint at /api/v4/cells/learn.
      #
      # Then `rake cells:compile` in the build and `rake cells:routes:export` for the HTTP router.
      class InstallGenerator < ::Rails::Generators::Base
        source_root File.expand_path("templates", __dir__)

        class_option :cell, type: :string, default: "cell_0", desc: "This cell's name (the Middleware's cell:)"

        desc "Sets up gitlab-cells-learn: the learn endpoint, the cell middleware and the build-time artifact"

        def configure_application
          application <<~RUBY
            # gitlab-cells-learn: decide dynamic constraints with the routes' own constraint objects;
            # `rake cells:compile` writes the artifact boot loads while the routes' digest matches.
            config.cells_learn.constraints = :rails
            config.cells_learn.artifact = Rails.root.join("tmp/cells/classifier.cells-learn").to_s
          RUBY
        end

        def create_initializer
          template "gitlab_cells_learn.rb.tt", "config/initializers/gitlab_cells_learn.rb"
        end

        def mount_endpoint
          route <<~RUBY.chomp
            mount Gitlab::Cells::Learn::Endpoint.new(classifier: Gitlab::Cells::Learn::Railtie.classifier, resolver: CELLS_RESOLVER,
                                                     logger: Rails.logger) => Gitlab::Cells::Learn::Endpoint::MOUNT_PATH
          RUBY
        end
      end
    end
  end
end
