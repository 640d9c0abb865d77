# frozen_string_literal: true

class Project < ApplicationRecord
  belongs_to :namespace

  def self.find_by_full_path(full_path, follow_redirects: false)
    Route.find_source(full_path, "Project", follow_redirects: follow_redirects)
  end
end
