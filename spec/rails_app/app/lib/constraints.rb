# frozen_string_literal: true

# GitLab's URL constrainers (lib/constraints/*_url_constrainer.rb): each asks the database.
module Constraints
  # NamespacePathValidator.valid_path?
  def self.valid_namespace_path?(path)
    path.is_a?(String) && PathRegex.full_namespace_path_regex.match?("#{path}/")
  end
end
