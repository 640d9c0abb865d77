# frozen_string_literal: true

module Constraints
  # GitLab's UserUrlConstrainer: the route holds only for a user that exists.
  class UserUrlConstrainer
    def matches?(request)
      full_path = request.params[:username]
      return false unless Constraints.valid_namespace_path?(full_path)

      User.find_by_full_path(full_path, follow_redirects: request.get?).present?
    end
  end
end
