# frozen_string_literal: true

module Constraints
  # GitLab's GroupUrlConstrainer: the route holds only for a group that exists.
  class GroupUrlConstrainer
    def matches?(request)
      full_path = request.params[:group_id] || request.params[:id]
      return false unless Constraints.valid_namespace_path?(full_path)

      Group.find_by_full_path(full_path, follow_redirects: request.get?).present?
    end
  end
end
