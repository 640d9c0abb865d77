# frozen_string_literal: true

# As the README's setup: the cell middleware, installed from an initializer (the Railtie has made
# Railtie.classifier by then). This application is cell_0, the cell every seeded namespace is on.
Rails.application.config.middleware.use Gitlab::Cells::Learn::Middleware,
                                        classifier: Gitlab::Cells::Learn::Railtie.classifier,
                                        resolver: ->(entity) { CellResolver.call(entity) },
                                        cell: "cell_0"
