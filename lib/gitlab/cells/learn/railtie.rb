# frozen_string_literal: true

require "rails/railtie"

module Gitlab
  module Cells
    module Learn
      # Wires the gem into a Rails application that bundles it (loaded by
      # `require "gitlab/cells/learn"` when `Rails::Railtie` is defined):
      #
      # - the rake tasks `cells:compile`, `cells:routes:export`, `cells:verify[LOG]` and
      #   `cells:coverage[TABLE]`;
      # - {Railtie.classifier}: the application's {RailsClassifier}, configured from
      #   `config.cells_learn`, for the learn {Endpoint} and the {Middleware};
      # - `reloader.to_prepare` marks it stale, so that in development a route change is
      #   recompiled at the next learn request (Rails' routes reloader runs before to_prepare);
      # - nothing is compiled during initialization: Rails draws the routes in its last
      #   initializers (the finisher's `set_routes_reloader_hook`, which no Railtie can run after
      #   without reordering the finisher), so the classifier is built at first use, or by
      #   `Railtie.classifier.load!` after `Rails.application.initialize!` (config/environment.rb,
      #   or Puma's `before_fork`) so that workers share it.
      #
      # Settings (`config.cells_learn.*` in config/application.rb or an environment file):
      # - `artifact`: the file `rake cells:compile` writes and boot loads
      #   (default `tmp/cells/classifier.cells-learn` under Rails.root; nil: always compile at boot);
      # - `rules`: learn rules (a path, JSON or a Hash; default `config/cells/rules.json` when that
      #   file exists, else GitLab's defaults);
      # - `engine`: `:auto`, `:dense` or `:lazy`;
      # - `constraints`: `:rails` to decide routes with dynamic constraints by their own Rails
      #   constraint objects ({RailsConstraints}), `nil` (default) to leave them to a block;
      # - `host`: the `Host` of the requests {RailsConstraints} builds (default "localhost");
      # - `routes_snapshot`: where `rake cells:routes:export` writes
      #   (default `config/routing/gitlab_routes.json`).
      class Railtie < ::Rails::Railtie
        config.cells_learn = ActiveSupport::OrderedOptions.new

        class << self
          # The application's classifier holder, created by the initializer.
          #
          # @return [RailsClassifier]
          # @raise [Error] before the application has run its initializers
          def classifier
            @classifier || raise(Error, "the gitlab-cells-learn Railtie has not initialized: call it after " \
                                        "Rails.application.initialize! (in config/routes.rb or later)")
          end

          # @api private
          attr_writer :classifier
        end

        rake_tasks do
          load File.expand_path("tasks/cells.rake", __dir__) # cells:coverage
          load File.expand_path("tasks/rails/cells.rake", __dir__)
        end

        initializer "gitlab_cells_learn.classifier" do |app|
          options = app.config.cells_learn
          root = app.root
          options.artifact = root.join("tmp/cells/classifier.cells-learn").to_s unless options.key?(:artifact)
          options.routes_snapshot ||= root.join("config/routing/gitlab_routes.json").to_s
          unless options.key?(:rules)
            default_rules = root.join("config/cells/rules.json")
            options.rules = default_rules.file? ? default_rules : nil
          end
          options.engine ||= :auto

          holder = RailsClassifier.new(app, artifact: options.artifact, rules: options.rules, engine: options.engine,
                                            constraints: options.constraints, host: options.host || "localhost",
                                            logger: Rails.logger)
          Railtie.classifier = holder
          app.reloader.to_prepare { holder.routes_changed! }
        end
      end
    end
  end
end
