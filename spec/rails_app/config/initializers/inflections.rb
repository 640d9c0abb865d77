# frozen_string_literal: true

# As GitLab: app/api/api.rb defines API.
ActiveSupport::Inflector.inflections(:en) { |inflect| inflect.acronym "API" }
