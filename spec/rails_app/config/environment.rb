# frozen_string_literal: true

require_relative "application"
Rails.application.initialize!
# As the README's setup: build the classifier once, before Puma serves, not at the first request.
Gitlab::Cells::Learn::Railtie.classifier.load!
