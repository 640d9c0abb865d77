# frozen_string_literal: true

class UsersController < ApplicationController
  actions :show, :calendar, :projects, :groups
end
